#!/usr/bin/env bash
# Reproduces the shipped OCT weights (medimg/weights/oct_light.safetensors): see medimg/weights/oct_light.md.
#   bash scripts/train_oct_default.sh [RUN_DIR]
# Training phantoms use seeds 101-106; seeds 201+ are held out for the model card's evaluation.
set -euo pipefail
RUN=${1:-runs/oct_default}
DATA=$RUN/data
MEDIMG=${MEDIMG:-.venv/bin/medimg}
mkdir -p "$DATA" "$RUN/cache"
for seed in 101 102 103 104 105 106; do
  [ -f "$DATA/finger$seed.tif" ] || $MEDIMG --quiet oct synth "$DATA/finger$seed.tif" --shape 160,128,160 --seed $seed >/dev/null
done
# BM3D the training volumes two at a time into the cache that `train --denoise` reads.
ls "$DATA"/finger???.tif | xargs -P 2 -I{} sh -c '
  name=$(basename {} .tif); out='"$RUN"'/cache/${name}_denoised.tif
  [ -f "$out" ] || { '"$MEDIMG"' --quiet oct denoise {} -o '"$RUN"'/cache/$name >/dev/null && mv '"$RUN"'/cache/$name/denoised.tif "$out" && rmdir '"$RUN"'/cache/$name; }'
$MEDIMG oct train "$DATA" -o "$RUN" --model light --denoise --crop 32 --batch-size 4 \
  --epochs 25 --steps-per-epoch 100 --lr 1e-3 --lr-step 20 --seed 0 --device auto
