#!/usr/bin/env bash
# Reproduces the shipped acne weights (medimg/weights/acne_fusion.safetensors): see medimg/weights/acne_fusion.md.
#   bash scripts/train_acne_default.sh [RUN_DIR]
# 1,500 synthetic photos (seed 0), trained on fold 0's trainval split; fold 0's test split is held out.
set -euo pipefail
RUN=${1:-runs/acne_default}
DATA=$RUN/data
MEDIMG=${MEDIMG:-.venv/bin/medimg}
[ -d "$DATA/JPEGImages" ] || $MEDIMG --quiet acne synth "$DATA" --n 1500 --seed 0 >/dev/null
$MEDIMG acne train "$DATA" --fold 0 --model fusion -o "$RUN" --epochs 40 --batch-size 32 \
  --lr 1e-3 --lr-step 30 --seed 0 --device auto
$MEDIMG acne evaluate "$DATA" --fold 0 --weights "$RUN/weights.safetensors" --json > "$RUN/evaluate_fold0.json"
$MEDIMG acne evaluate "$DATA" --fold 0 --weights "$RUN/weights.safetensors"
