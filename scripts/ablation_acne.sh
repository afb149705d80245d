#!/usr/bin/env bash
# The report's model comparison on the synthetic photos of scripts/train_acne_default.sh: resnet
# and vit alone with the fusion's recipe (the fusion is the shipped run), then fold 0's held-out
# AVE_ACC and counting errors of each. Figures for the README/model card, not shipped weights.
#   bash scripts/ablation_acne.sh [RUN_ROOT]
set -euo pipefail
ROOT=${1:-runs}
DATA=$ROOT/acne_default/data
MEDIMG=${MEDIMG:-.venv/bin/medimg}
[ -f "$ROOT/acne_default/weights.safetensors" ] || bash scripts/train_acne_default.sh "$ROOT/acne_default"
for model in resnet vit; do
  $MEDIMG --quiet acne train "$DATA" --fold 0 --model $model -o "$ROOT/acne_$model" --epochs 40 --batch-size 32 \
    --lr 1e-3 --lr-step 30 --seed 0 --device auto > /dev/null &
done
wait
for model in resnet vit fusion; do
  run=$ROOT/acne_$model; [ $model = fusion ] && run=$ROOT/acne_default
  echo "== $model"
  $MEDIMG --quiet acne evaluate "$DATA" --fold 0 --model $model --weights "$run/weights.safetensors" | grep average
done
