#!/usr/bin/env bash
# Issue 12's GPU figures and the CUDA paths, as one prepared run for the device tool (one H200; about
# 4-5 minutes of its 15; 2026-11-30: 110 s for the first three steps, 54 s for the fourth). Nothing here runs in CI.
#
# Once, here (the device cannot download): the packages its image lacks, as wheels in .whl/
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl bm3d bm4d PyWavelets pydicom nibabel
# Then: run(command="bash benchmarks/gpu_checks.sh", carry=[".whl"], timeout_s=560)
#
# Writes under $OUT: gpu.txt, cuda_tests.log, bm3d_speed.log (ours on CUDA against the package on the
# machine's CPU cores, batches of 8 B-scans) and oct_full_volume.log (the fast path on CUDA, 96 B-scans
# of 500 x 1800 scaled to 1400).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
# medimg itself, without its dependencies, for its entry points: the networks register through them
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target /tmp/site . >/dev/null
export PYTHONPATH="$PYTHONPATH:/tmp/site"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider -k cuda \
    tests/common/test_bm3d_torch.py tests/common/test_denoisers.py tests/common/test_device.py 2>&1 | tee "$OUT/cuda_tests.log"
timeout 200 python3 benchmarks/bm3d_speed.py --device cuda --batch 8 --repeats 3 2>&1 | tee "$OUT/bm3d_speed.log"
timeout 180 python3 benchmarks/oct_full_volume.py --paths fast --bscans 96 --device cuda 2>&1 | tee "$OUT/oct_full_volume.log"
