#!/usr/bin/env bash
# Reproduces the shipped acne weights (medimg/weights/acne_lesion.safetensors): see medimg/weights/acne_lesion.md.
#   bash scripts/train_acne_lesion.sh [DATA_DIR] [RUN_DIR]
# Real ACNE04 photos and boxes (../shared/data/acne04_train), fold 0's training split (2,373 photos);
# fold 0's test split (600 photos) is held out. About 45 minutes on 2 CPU cores.
set -euo pipefail
DATA=${1:-../shared/data/acne04_train}
RUN=${2:-runs/acne_lesion}
MEDIMG=${MEDIMG:-.venv/bin/medimg}
# 18 epochs of 148 batches of 16 at 320 x 320; Adam lr 2e-3, 2e-4 from epoch 15; threshold chosen on the training photos
$MEDIMG acne train "$DATA" --model lesion --fold 0 -o "$RUN" --seed 0 --size 320 --epochs 18 --lr-step 14 --device auto
$MEDIMG acne evaluate "$DATA" --fold 0 --weights "$RUN/weights.safetensors" --json > "$RUN/evaluate_fold0.json"
$MEDIMG acne evaluate "$DATA" --fold 0 --weights "$RUN/weights.safetensors"
