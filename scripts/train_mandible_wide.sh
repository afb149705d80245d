#!/usr/bin/env bash
# The mandible network trained on the wide family (issue 11): heads that vary pose, jaw opening,
# dentition, tissue levels, calibration offset, kernel, slice thickness, pixel size, noise and
# beam hardening (medimg/mandible/phantom_family.py: WIDE_FAMILY).
#   bash scripts/train_mandible_wide.sh [RUN_DIR]
# Training heads: wide seeds 1-30 (every third with metal fillings), validation: wide seed 31.
# Evaluate on the held-out family (scanner settings never trained on):
#   python benchmarks/mandible_accuracy.py --style held-out --seeds 201,202,203,204,205,206 \
#     --metal-seeds 202,205 --weights RUN_DIR/weights.safetensors
set -euo pipefail
RUN=${1:-runs/mandible_wide}
DATA=$RUN/data
MEDIMG=${MEDIMG:-.venv/bin/medimg}
for seed in $(seq 1 31); do
  metal=""; [ $((seed % 3)) -eq 0 ] && metal="--metal"
  [ -d "$DATA/case$seed/dicom" ] || $MEDIMG --quiet mandible synth "$DATA/case$seed" --seed $seed --style wide $metal >/dev/null
done
$MEDIMG mandible train "$DATA" -o "$RUN" --arch res-cbam-unet --width 0.125 --size 256 \
  --epochs 48 --freeze-epochs 36 --steps-per-epoch 60 --batch-size 4 --lr 1e-3 \
  --validation-case case31 --seed 0 --device auto
