#!/usr/bin/env bash
# The paper's ablation (Table 3) on the synthetic heads of scripts/train_mandible_default.sh:
# the same recipe for unet, res-unet, cbam-unet (res-cbam-unet is the shipped run), then the
# held-out accuracy of each. Figures for the README/model card, not shipped weights.
#   bash scripts/ablation_mandible.sh [RUN_ROOT]
set -euo pipefail
ROOT=${1:-runs}
DATA=$ROOT/mandible_default/data
MEDIMG=${MEDIMG:-.venv/bin/medimg}
[ -d "$DATA/case10/dicom" ] || bash scripts/train_mandible_default.sh "$ROOT/mandible_default"
for arch in unet res-unet cbam-unet; do
  $MEDIMG --quiet mandible train "$DATA" -o "$ROOT/mandible_$arch" --arch $arch --width 0.125 --size 256 \
    --epochs 30 --freeze-epochs 20 --steps-per-epoch 60 --batch-size 4 --lr 1e-3 \
    --validation-case case10 --seed 0 --device auto > /dev/null &
done
wait
for run in mandible_unet mandible_res-unet mandible_cbam-unet mandible_default; do
  echo "== $run"
  .venv/bin/python benchmarks/mandible_accuracy.py --weights "$ROOT/$run/weights.safetensors" 2>/dev/null | grep pooled
done
