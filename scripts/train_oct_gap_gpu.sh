#!/usr/bin/env bash
# The shipped OCT light weights (medimg/weights/oct_light.safetensors, card oct_light.md; issue 10), trained
# from the start on helices on both sides of the held-out pitch, sized for one GPU: 299 s on an H200
# through the device tool (2026-11-30). On 2 CPU cores it would take about 5-6 hours; the CPU recipe of
# the previous weights is scripts/train_oct_wide.sh.
#   bash scripts/train_oct_gap_gpu.sh [RUN_DIR]        (N=24 volumes, PHASE1_S/PHASE2_S: time limits)
# Training phantoms: the `wide-gap` family (medimg.oct_glands.phantom.WIDE_GAP_FAMILY): the wide
# family with helix pitch 6-12 or 20-28, never the held-out `spec` family's 12-20. Volumes are
# denoised with the tissue-speckle sigma, as `extract` does by default. Each phase writes its
# weights after every epoch, so a phase stopped by its time limit leaves the last whole epoch.
set -uo pipefail
RUN=${1:-runs/oct_gap}
N=${N:-24}
MEDIMG=${MEDIMG:-medimg}
DATA=$RUN/data
mkdir -p "$DATA" "$RUN/cache"
seq 301 $((300 + N)) | xargs -P "${JOBS:-8}" -I{} sh -c \
  '[ -f '"$DATA"'/finger{}.tif ] || '"$MEDIMG"' --quiet oct synth '"$DATA"'/finger{}.tif --style wide-gap --shape 128,176,128 --seed {} >/dev/null'
ls "$DATA"/finger???.tif | xargs -P "${DENOISE_JOBS:-4}" -I{} sh -c '
  name=$(basename {} .tif); out='"$RUN"'/cache/${name}_denoised.tif
  [ -f "$out" ] || { '"$MEDIMG"' --quiet oct denoise --noise-region tissue {} -o '"$RUN"'/cache/$name >/dev/null && mv '"$RUN"'/cache/$name/denoised.tif "$out" && rmdir '"$RUN"'/cache/$name; }'
# Phase 1: 2,000 steps of sixteen 32^3 crops.
timeout "${PHASE1_S:-230}" $MEDIMG oct train "$DATA" -o "$RUN" --model light --denoise --crop 32 --batch-size 16 \
  --epochs 20 --steps-per-epoch 100 --lr 2e-3 --lr-step 15 --seed 0 --device auto --loader-workers "${LOADERS:-6}"
# Phase 2: 1,000 steps of eight 48^3 crops, depth stretched by a log-uniform 0.7-2 (--axial-scale).
mkdir -p "$RUN/phase2"
ln -sfn "$(cd "$RUN" && pwd)/cache" "$RUN/phase2/cache"
timeout "${PHASE2_S:-200}" $MEDIMG oct train "$DATA" -o "$RUN/phase2" --model light --denoise --crop 48 --batch-size 8 \
  --epochs 10 --steps-per-epoch 100 --lr 4e-4 --lr-step 7 --seed 2 --device auto --loader-workers "${LOADERS:-6}" \
  --start-weights "$RUN/weights.safetensors" --axial-scale 0.7,2
