#!/usr/bin/env bash
# Speed: workload W1 (Fashion-MNIST 60k, MLP 784-256-64-16, denoising σ 0.3, batch 128,
# Adam 1e-3, 4 epochs), W2 (the default conv net at k = 30 on data/mnist, reconstruct,
# same optimiser) and W2 with the conv defaults' own batch 64 and warm-up + cosine from
# 3e-3 (w2-defaults), with ae-tch and with the PyTorch reference loops in
# scripts/bench/reference.py (eager, and with torch.compile'd model and optimiser step),
# same machine, same libtorch, same thread count. Prints a table per workload and writes
# bench-out/<workload>/bench.json. Extra arguments go to scripts/bench/bench.py (--threads
# N, --epochs N, --device cuda, --workload w1,w2,w2-defaults, --no-compile).
# `scripts/bench.sh --breakdown [--workload w1|w2] [--precision fp32|bf16] [--threads N]
# [--steps N]` instead prints where one step of ae-tch goes: the loop's parts over real
# steps, then every operation alone at the workload's shapes (examples/step_breakdown/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f data/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "bench: data/fashion-mnist is missing" >&2; exit 1; }
if [ "${1:-}" = --breakdown ]; then
  shift
  cargo build --release --locked --quiet --example step_breakdown
  exec target/release/examples/step_breakdown "$@"
fi
cargo build --release --locked --quiet
exec .venv/bin/python scripts/bench/bench.py "$@"
