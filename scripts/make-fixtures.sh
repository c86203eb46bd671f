#!/usr/bin/env bash
# Writes tests/fixtures/v<N>/ (N: the binary's model.json format version): one small run
# folder per kind that ae-tch writes (image MLP, conv, VAE, colour conv, classifier, vector,
# series), each with what every later version must reproduce from it:
#   expected-eval.json      `eval --json`
#   expected-anomaly.json   `anomaly --json` (image MLP, vector and series runs; the run's
#                           own anomaly.json is the threshold file that anomaly writes)
# tests/it/compat.rs loads every version's folders and checks those numbers. Run it once
# per format version, with a binary of that version:
#   scripts/make-fixtures.sh [BINARY]      (default target/release/ae-tch)
# Paths are recorded relative to the checkout (data/...); the test points them at its own.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/ae-tch}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--device cpu --threads 1 --no-tensorboard --lr-schedule constant --seed 7)
train() { local name=$1; shift; "$bin" --quiet train "${common[@]}" --out "$tmp/$name" "$@"; }

train mlp-denoise --data data/mnist --limit 600 --epochs 2 --hidden 32 --latent 8 \
  --mode denoise --sigma 0.3
train conv --data data/mnist --limit 600 --epochs 1 --arch conv --channels 4,8 --latent 8
train vae --data data/mnist --limit 600 --epochs 2 --arch vae --hidden 32 --latent 4
train colour --data data/emoji --limit 300 --epochs 1 --arch conv --channels 4,8 \
  --latent 8 --resize 32x32
train vector --data data/shuttle/shuttle.csv --label-column class --limit 3000 \
  --epochs 2 --hidden 16 --latent 4
train series --data data/series/135_UCR_Anomaly_InternalBleeding16_TEST.csv \
  --columns value --label-column is_anomaly --window 32 --hop 4 --test-fraction 0.84 \
  --epochs 2 --hidden 16 --latent 4
"$bin" --quiet finetune --device cpu --threads 1 --no-tensorboard --epochs 1 --seed 7 \
  --run "$tmp/mlp-denoise" --out "$tmp/classifier" >/dev/null

version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["format_version"])' \
  "$tmp/conv/model.json")
out=tests/fixtures/v$version
[ ! -e "$out" ] || { echo "make-fixtures: $out exists; remove it first" >&2; exit 1; }
for run in "$tmp"/*/; do
  run=${run%/}
  rm -rf "$run/tb" "$run"/*.png
  "$bin" eval --run "$run" --json --threads 1 >"$run/expected-eval.json"
done
anomaly() {
  "$bin" anomaly --run "$tmp/$1" --json --threads 1 --normal-classes "$2" \
    >"$tmp/$1/expected-anomaly.json"
}
anomaly mlp-denoise 1
anomaly vector Rad.Flow
anomaly series 0
# Paths relative to the checkout. One checkpoint (conv) is kept; the others only weigh.
sed -i "s#\"$tmp/#\"$out/#g; s#\"$(pwd)/#\"#g" "$tmp"/*/model.json
find "$tmp" -name checkpoint.ot ! -path "*/conv/*" -delete
mkdir -p "$(dirname "$out")" && mv "$tmp" "$out" && trap - EXIT && chmod 755 "$out"
du -sh "$out"
