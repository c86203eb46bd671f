#!/usr/bin/env bash
# Issue 15's two tables on data/fashion-mnist: the probe (raw pixels / PCA-32 / the codes
# of a denoising autoencoder at k = 32, × logistic regression / k-NN), and the few-labels
# table (labels per class 10, 100, 1000 × finetuned from the autoencoder / the same
# network from scratch, SEEDS seeds each, mean ± sd of test accuracy). Runs land in
# runs/probe/. About 30 minutes on 2 cores (the probe's k-NN on raw pixels is most of it;
# with one seed, 31 min while the test suite shared the cores, and the seed-1 figures are
# the guide's to every digit).
#   scripts/probe-table.sh [SEEDS] [-- extra train flags]      (default: 3 seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
seeds=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
bin=target/release/ae-tch
out=runs/probe
mkdir -p "$out"
# The autoencoder: the default MLP (784-512-128-32), masking noise p = 0.3 (of the
# corruptions tried, the codes the linear probe reads best; docs/guide/quality.md, "Representation
# learning").
dae_flags=(--data data/fashion-mnist --latent 32 --mode denoise --noise masking
  --noise-level 0.3 --epochs 20 "$@")
if [ ! -f "$out/dae/model.json" ]; then
  "$bin" train -q --out "$out/dae" --force "${dae_flags[@]}" >/dev/null
fi
echo "autoencoder: ae-tch train ${dae_flags[*]}"
"$bin" eval --run "$out/dae" | head -4
echo
"$bin" probe --run "$out/dae" --plot "$out/probe-confusion.png"
echo

for n in 10 100 1000; do
  for init in pretrained scratch; do
    for seed in $(seq 1 "$seeds"); do
      clf="$out/ft-$n-$init-$seed"
      [ -f "$clf/model.json" ] && continue
      flags=(--labels-per-class "$n" --seed "$seed")
      [ "$init" = scratch ] && flags+=(--from-scratch)
      "$bin" finetune -q --run "$out/dae" --out "$clf" --force "${flags[@]}" >/dev/null
    done
  done
done
python3 - "$out" "$seeds" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], int(sys.argv[2])
def accs(n, init):
    return [json.load(open(f"{out}/ft-{n}-{init}-{s}/model.json"))["outcome"]["classification"]["accuracy"]
            for s in range(1, seeds + 1)]
def cell(a):
    sd = statistics.stdev(a) if len(a) > 1 else 0.0
    return f"{statistics.mean(a):.4f} ± {sd:.4f}"
print(f"few labels: test accuracy on the 10,000 test images, mean ± sd of {seeds} seeds")
print("| labels per class | finetuned from the autoencoder | from scratch | difference |")
print("|---|---|---|---|")
for n in (10, 100, 1000):
    p, s = accs(n, "pretrained"), accs(n, "scratch")
    print(f"| {n} | {cell(p)} | {cell(s)} | {100 * (statistics.mean(p) - statistics.mean(s)):+.1f} points |")
PY
