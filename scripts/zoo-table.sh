#!/usr/bin/env bash
# Issue 4's comparison: every architecture at k = 16 and k = 30, and every corruption
# kind, on data/mnist and data/fashion-mnist, with the same epochs; prints a markdown table
# of test squared error per image, PSNR and SSIM. Runs land in runs/zoo/.
#   scripts/zoo-table.sh [EPOCHS] [FASHION_LIMIT]     (defaults: 10 epochs, 20000 images)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
epochs=${1:-10}
limit=${2:-20000}
bin=target/release/ae-tch
out=runs/zoo
mkdir -p "$out"
# The settings of the table in docs/guide/quality.md (before issue 13's defaults): constant 1e-3, batch
# 128, the plain conv network; scripts/sweep.sh measures today's defaults.
common=(--device cpu --epochs "$epochs" --batch-size 128 --lr 1e-3 --lr-schedule constant --force)

row() { # name data extra-args...
  local name=$1 data=$2; shift 2
  local lim=()
  [ "$data" = data/fashion-mnist ] && lim=(--limit "$limit")
  "$bin" train --data "$data" --out "$out/$name" "${common[@]}" "${lim[@]}" "$@" >/dev/null 2>&1 \
    || { echo "| $name | failed |"; return; }
  python3 - "$out/$name/model.json" "$name" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t, tr = m["outcome"]["test"], m["train"]
noisy = f'{t["noisy_psnr_db"]:.2f}' if "noisy_psnr_db" in t else "-"
print(f'| {sys.argv[2]} | {t["sq_err_per_image"]:.2f} | {t["psnr_db"]:.2f} | {t["ssim"]:.3f} | '
      f'{t["pca_sq_err_per_image"]:.2f} | {noisy} | {m["outcome"]["train_seconds"]:.0f} |')
PY
}

echo "| run | sq. err/img | PSNR dB | SSIM | PCA sq. err/img (same k) | noisy PSNR dB | train s |"
echo "|---|---|---|---|---|---|---|"
for data in data/mnist data/fashion-mnist; do
  d=$(basename "$data")
  for k in 16 30; do
    row "$d-mlp-k$k" "$data" --arch mlp --hidden 512,128 --latent "$k"
    row "$d-conv-k$k" "$data" --arch conv --channels 32,64 --blocks 0 --norm none --latent "$k"
    row "$d-vae-k$k" "$data" --arch vae --hidden 512,128 --latent "$k"
  done
  for noise in gaussian masking salt-pepper; do
    row "$d-denoise-$noise" "$data" --arch mlp --hidden 512,128 --latent 32 --mode denoise --noise "$noise" --noise-level 0.3
  done
done
