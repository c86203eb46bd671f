#!/usr/bin/env bash
# The main job on the embedded data: sets up what is missing, builds ae-tch, trains a
# denoising autoencoder on data/mnist on the CPU (about a minute on 2 cores), and says
# where the plots are. Extra arguments go to `ae-tch train` and win over the ones below
# (e.g. --epochs 5, --device cuda).
#   scripts/demo.sh --emoji   the colour demo instead: a convolutional autoencoder on the
#                             64x64 RGB Twemoji images of data/emoji (about 1.5 minutes)
#   scripts/demo.sh --signals the signals demo: the anomaly in a patient's heart-rate
#                             series (UCR archive), found and plotted step by step, and a
#                             speech denoiser on six spoken words cleaning two it never
#                             heard, beside PCA (scripts/speech-table.sh; about 30 s);
#                             extra arguments go to the heart-rate run
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building ae-tch (the first build compiles the libtorch bindings: a few minutes)" >&2
cargo build --release --locked --quiet
start=$SECONDS
if [ "${1:-}" = "--signals" ]; then
  shift
  out=runs/heart-rate
  [ -d data/series ] && [ -d data/speech ] ||
    { echo "demo: data/series or data/speech is missing (PyPI or Debian unreachable?)" >&2; exit 1; }
  # The UCR file is the whole series; its first 1,200 steps are the anomaly-free
  # training part, so the last 84% is scored.
  target/release/ae-tch train --data data/series/135_UCR_Anomaly_InternalBleeding16_TEST.csv \
    --columns value --label-column is_anomaly --window 64 --hop 1 --test-fraction 0.84 \
    --epochs 40 --out "$out" --force --device cpu --quiet "$@" >/dev/null
  target/release/ae-tch anomaly --run "$out" --normal-classes 0 -o "$out/points.csv" \
    --plot "$out/series.png"
  echo
  echo "demo: the speech denoiser (six words to train on, two held out, 0/5/10 dB noise):" >&2
  .venv/bin/python scripts/speech-table.py target/release/ae-tch data/speech runs/speech-table
  cat >&2 <<MSG
demo: done in $((SECONDS - start)) s. Look at:
  $out/series.png    the heart-rate series above its score per step,
                                flagged steps shaded, the labelled anomaly marked
  $out/points.csv    one row per step: value, score, flag, label
  runs/speech-table/denoised/   the held-out words with noise, cleaned (WAV; the
                                noisy inputs are in runs/speech-table/)
Then try: target/release/ae-tch eval --run runs/speech-table/run
MSG
  exit 0
elif [ "${1:-}" = "--emoji" ]; then
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
