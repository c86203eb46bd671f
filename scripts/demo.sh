#!/usr/bin/env bash
# The main job on the embedded data: sets up what is missing, builds ae-tch, trains a
# denoising autoencoder on data/mnist on the CPU (about a minute on 2 cores), and says
# where the plots are. Extra arguments go to `ae-tch train` and win over the ones below
# (e.g. --epochs 5, --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building ae-tch (the first build compiles the libtorch bindings: a few minutes)" >&2
cargo build --release --locked --quiet
out=runs/demo
start=$SECONDS
target/release/ae-tch train --data data/mnist --out "$out" --force --device cpu \
  --mode denoise --sigma 0.3 --hidden 512,128 --latent 32 --epochs 60 "$@"
cat >&2 <<MSG
demo: done in $((SECONDS - start)) s. Look at:
  $out/grid.png   clean / noisy / denoised test digits
  $out/loss.png   train and validation loss per epoch
Then try: target/release/ae-tch eval --run $out --json
MSG
