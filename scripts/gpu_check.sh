#!/usr/bin/env bash
# The GPU check, in one call: the CuPy test suite, lesson 9's GPU cells in full mode, and the GPU
# benchmark against PyTorch on CUDA at batch 128 and 1024 (the fast path's fused CuPy kernel on).
# About 5 minutes on one H200; every log and figure goes to $OUT (default: gpu-check/), where
# benchmarks/RESULTS.md quotes them from.
#
# On a machine with internet and the data beside the repo (../shared/datasets), prepare once:
#     scripts/gpu_check.sh --prepare
# which copies Fashion-MNIST and the wheels a bare GPU image may lack (array-api-compat,
# array-api-strict, for Python 3.12) into .gpu/, kept out of git by .git/info/exclude. Then, on
# the GPU machine, from the repository root, with .gpu/ carried along:
#     bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
    mkdir -p .gpu/wheels .gpu/fashion-mnist
    grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >>.git/info/exclude
    cp ../shared/datasets/fashion-mnist/*.gz .gpu/fashion-mnist/
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu/wheels "array-api-compat>=1.11" "array-api-strict>=2.3"
    du -sh .gpu
    exit 0
fi

out=${OUT:-gpu-check}
mkdir -p "$out"
py=python3
if ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    $py -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-site .gpu/wheels/*.whl
    export PYTHONPATH=/tmp/gpu-site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg PYTHONUNBUFFERED=1
data=${MINIVAE_GPU_DATA:-.gpu/fashion-mnist}
status=0

{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    $py -c "import sys, numpy, cupy, numba; print('Python', sys.version.split()[0], '| NumPy',
numpy.__version__, '| CuPy', cupy.__version__, '| numba', numba.__version__)"
    $py -c "import torch; print('PyTorch', torch.__version__, '| CUDA', torch.version.cuda)"
} 2>&1 | tee "$out/device.txt"

echo "== 1. the test suite on CuPy (every test that runs on the cupy backend)"
timeout 240 $py -m pytest -q -p no:cacheprovider -k cupy tests 2>&1 | tee "$out/cupy_tests.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "== 2. lesson 9 in full mode, its GPU cells included"
timeout 180 $py - <<'PY' 2>&1 | tee "$out/lesson09.txt"
import json, time
nb = json.load(open("lessons/09_gpu_and_beyond.ipynb"))
scope = {"__name__": "__main__"}
for i, cell in enumerate(nb["cells"]):
    if cell["cell_type"] == "code":
        started = time.perf_counter()
        exec(compile("".join(cell["source"]), f"lesson09-cell{i}", "exec"), scope)
        print(f"[cell {i}: {time.perf_counter() - started:.1f} s]", flush=True)
PY
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "== 3. the benchmark on the GPU against PyTorch on CUDA"
for batch in 128 1024; do
    timeout 200 $py benchmarks/vae_vs_pytorch.py --device gpu --cupy-kernels --epochs 3 \
        --batch-size "$batch" --data-dir "$data" 2>&1 | tee "$out/benchmark_batch$batch.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
done
echo "== done (status $status); logs in $out/"
exit $status
