#!/usr/bin/env bash
# The main job on the embedded data: sets up what is missing, builds ae-tch, trains a
# denoising autoencoder on data/mnist on the CPU, and says where the plots are.
# Extra arguments go to `ae-tch train` (e.g. --epochs 5, --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building ae-tch (the first build compiles libtorch bindings: a few minutes)" >&2
cargo build --release --locked --quiet
out=runs/demo
start=$SECONDS
target/release/ae-tch train --data data/mnist --out "$out" --force --device cpu \
  --mode denoise --sigma 0.3 "$@"
target/release/ae-tch eval --run "$out" >/dev/null
echo "demo: trained and evaluated in $((SECONDS - start)) s; open $out/loss.png and $out/grid.png" >&2
