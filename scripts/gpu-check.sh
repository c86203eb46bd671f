#!/usr/bin/env bash
# CUDA check for a GPU machine that has PyTorch 2.11 but no Rust toolchain. Takes the
# prebuilt target/release/ae-tch (built against libtorch 2.11.0 by scripts/setup.sh +
# cargo on a build machine) and data/fashion-mnist, points the loader at this machine's
# torch libraries, checks that ae-tch sees CUDA, then runs workload W1 on the GPU in fp32
# and bf16 with ae-tch and with the PyTorch reference (scripts/bench/reference.py) and
# prints the same table as scripts/bench.sh (also written to bench-out/bench.json).
#
#   scripts/gpu-check.sh [--epochs N] [--repeat N]     (extra arguments go to bench.py)
#
# GPU_CHECK_DEVICE=cpu GPU_CHECK_PRECISION=fp32 runs the same plumbing on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
PRECISION=${GPU_CHECK_PRECISION:-fp32,bf16}
BIN=target/release/ae-tch
[ -x "$BIN" ] || { echo "gpu-check: $BIN is missing: build it first (cargo build --release)" >&2; exit 1; }
[ -f data/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "gpu-check: data/fashion-mnist is missing" >&2; exit 1; }
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== torch on this machine"
"$PY" - "$DEVICE" <<'PY'
import sys
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB")
if sys.argv[1] != "cpu" and not torch.cuda.is_available():
    sys.exit("gpu-check: PyTorch sees no CUDA device on this machine")
PY
echo "== ae-tch on this machine (libtorch from $TORCH_LIB)"
"$BIN" --version
# A one-epoch run on 2000 images proves the binary loads libtorch_cuda and trains there.
"$BIN" doctor
"$BIN" train --data data/fashion-mnist --device "$DEVICE" --limit 2000 --epochs 1 \
  --out bench-out/smoke --force --quiet >/dev/null
echo "ae-tch trains on $DEVICE: ok"
# Data-parallel under torchrun: one rank per GPU (NCCL on CUDA, Gloo on the CPU), world
# size 1 here; the exchange time is printed by rank 0.
TORCHRUN=$(dirname "$(command -v "$PY")")/torchrun
if [ -x "$TORCHRUN" ]; then
  echo "== torchrun, one rank on $DEVICE"
  "$TORCHRUN" --standalone --no-python --nproc-per-node 1 "$BIN" train --data data/fashion-mnist \
    --device "$DEVICE" --limit 2000 --epochs 2 --out bench-out/dist --force --no-tensorboard \
    2>&1 | grep -E "c10d|epoch|exchange|error" || true
fi
echo "== W1 on $DEVICE"
exec "$PY" scripts/bench/bench.py --device "$DEVICE" --precision "$PRECISION" --no-dataloader "$@"
