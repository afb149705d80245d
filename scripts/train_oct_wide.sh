#!/usr/bin/env bash
# The previous OCT weights (phase 3, shipped 2026-11-29 to 2026-11-30; card oct_light.md, History), trained on 2 CPU cores (issue 10).
#   bash scripts/train_oct_wide.sh [RUN_DIR]          (TRAIN=0: only write and denoise the data)
# Volumes are denoised with the tissue-speckle sigma, as `extract` does by default (--noise-region tissue).
# Training phantoms: the `wide` family (medimg.oct_glands.phantom.WIDE_FAMILY), seeds 301-312.
# The model card's held-out family is `spec` (SPEC_FAMILY), whose brightness, display range, duct
# pitch and artefact rows the wide family never draws: benchmarks/oct_accuracy.py --style spec.
set -euo pipefail
RUN=${1:-runs/oct_wide}
DATA=$RUN/data
MEDIMG=${MEDIMG:-.venv/bin/medimg}
mkdir -p "$DATA" "$RUN/cache"
for seed in $(seq 301 312); do
  [ -f "$DATA/finger$seed.tif" ] || $MEDIMG --quiet oct synth "$DATA/finger$seed.tif" --style wide --shape 128,176,128 --seed $seed >/dev/null
done
# BM3D (sigma of the tissue speckle, as `extract` does) two volumes at a time, into the cache `train --denoise` reads.
ls "$DATA"/finger???.tif | xargs -P 2 -I{} sh -c '
  name=$(basename {} .tif); out='"$RUN"'/cache/${name}_denoised.tif
  [ -f "$out" ] || { '"$MEDIMG"' --quiet oct denoise --noise-region tissue {} -o '"$RUN"'/cache/$name >/dev/null && mv '"$RUN"'/cache/$name/denoised.tif "$out" && rmdir '"$RUN"'/cache/$name; }'
[ "${TRAIN:-1}" = 1 ] || exit 0
# Phase 1: 3,600 steps of four 32^3 crops (about 50 min on 2 CPU cores).
$MEDIMG oct train "$DATA" -o "$RUN" --model light --denoise --crop 32 --batch-size 4 \
  --epochs 36 --steps-per-epoch 100 --lr 2e-3 --lr-step 28 --seed 0 --device auto
# Phase 2: fine-tuned on larger 48^3 crops, which hold whole duct turns and more of the layers
# around them (900 steps of two, lr 2e-4; about 55 min). Reads the same denoised cache.
mkdir -p "$RUN/phase2"
ln -sfn "$(cd "$RUN" && pwd)/cache" "$RUN/phase2/cache"
$MEDIMG oct train "$DATA" -o "$RUN/phase2" --model light --denoise --crop 48 --batch-size 2 \
  --epochs 9 --steps-per-epoch 100 --lr 2e-4 --seed 1 --device auto --start-weights "$RUN/weights.safetensors"
# Phase 3, the shipped weights: each 48^3 crop's depth stretched by a log-uniform factor 0.7-2
# (--axial-scale), as OCT systems of other axial-to-lateral sampling record ducts: longer or shorter
# helix turns, taller or flatter tubes (1,000 steps of two, lr 4e-4 then 4e-5 after epoch 7; about 55 min).
mkdir -p "$RUN/phase3"
ln -sfn "$(cd "$RUN" && pwd)/cache" "$RUN/phase3/cache"
$MEDIMG oct train "$DATA" -o "$RUN/phase3" --model light --denoise --crop 48 --batch-size 2 \
  --epochs 10 --steps-per-epoch 100 --lr 4e-4 --lr-step 7 --seed 2 --device auto \
  --start-weights "$RUN/phase2/weights.safetensors" --axial-scale 0.7,2
