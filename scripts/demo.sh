#!/usr/bin/env bash
# The main job on the embedded data: sets up what is missing, builds ae-tch, trains a
# denoising autoencoder on data/mnist on the CPU (about a minute on 2 cores), and says
# where the plots are. Extra arguments go to `ae-tch train` and win over the ones below
# (e.g. --epochs 5, --device cuda).
#   scripts/demo.sh --emoji   the colour demo instead: a convolutional autoencoder on the
#                             64x64 RGB Twemoji images of data/emoji (about 1.5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building ae-tch (the first build compiles the libtorch bindings: a few minutes)" >&2
cargo build --release --locked --quiet
start=$SECONDS
if [ "${1:-}" = "--emoji" ]; then
  shift
  out=runs/emoji
  [ -d data/emoji/train ] || { echo "demo: data/emoji is missing (npm unreachable?)" >&2; exit 1; }
  target/release/ae-tch train --data data/emoji --out "$out" --force --device cpu \
    --arch conv --channels 32,64,128 --blocks 0 --norm none --latent 32 --epochs 60 \
    --lr 2e-3 --batch-size 32 --lr-schedule cosine --early-stop 10 "$@"
  what="test emoji and their reconstructions, in colour"
else
  out=runs/demo
  target/release/ae-tch train --data data/mnist --out "$out" --force --device cpu \
    --mode denoise --sigma 0.3 --arch conv --blocks 0 --latent 32 --epochs 12 "$@"
  what="clean / noisy / denoised test digits"
fi
cat >&2 <<MSG
demo: done in $((SECONDS - start)) s. Look at:
  $out/grid.png   $what
  $out/loss.png   train and validation loss per epoch
  $out/tb/        the TensorBoard log: .venv/bin/tensorboard --logdir runs
Then try: target/release/ae-tch eval --run $out --json
MSG
