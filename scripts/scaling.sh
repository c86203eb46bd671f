#!/usr/bin/env bash
# Data-parallel training on one host: workload W1 (Fashion-MNIST 60k, MLP 784-256-64-16,
# denoising σ 0.3, global batch 128, Adam 1e-3, constant rate) as one process with T
# threads against T processes with one thread each under torchrun (c10d Gloo on
# loopback), EPOCHS epochs each. Prints samples/s per epoch, the final losses side by side,
# and the time the ranks spend exchanging gradients. Runs land in bench-out/scaling/.
#   scripts/scaling.sh [T] [EPOCHS]          (default: 2 threads/processes, 3 epochs)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
[ -f data/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "scaling: data/fashion-mnist is missing" >&2; exit 1; }
t=${1:-2}
epochs=${2:-3}
out=bench-out/scaling
mkdir -p "$out"
bin=target/release/ae-tch
w1=(train --data data/fashion-mnist --mode denoise --sigma 0.3 --hidden 256,64 --latent 16
  --epochs "$epochs" --batch-size 128 --lr 1e-3 --lr-schedule constant --val-fraction 0
  --init torch --device cpu --no-tensorboard --force)
"$bin" "${w1[@]}" --threads "$t" --out "$out/one" >/dev/null 2>"$out/one.log"
.venv/bin/torchrun --standalone --no-python --nproc-per-node "$t" "$bin" "${w1[@]}" \
  --threads 1 --out "$out/ranks" >/dev/null 2>"$out/ranks.log"
python3 - "$out" "$t" <<'PY'
import csv, re, sys
out, t = sys.argv[1], sys.argv[2]
def rows(run):
    with open(f"{out}/{run}/metrics.csv") as f:
        return list(csv.DictReader(f))
one, ranks = rows("one"), rows("ranks")
print(f"W1 on this host: 1 process x {t} threads against {t} processes x 1 thread (torchrun, Gloo)")
print("| epoch | samples/s, 1 process | samples/s, ranks | train loss, 1 process | train loss, ranks |")
print("|---|---|---|---|---|")
for a, b in zip(one, ranks):
    print(f"| {a['epoch']} | {float(a['samples_per_s']):,.0f} | {float(b['samples_per_s']):,.0f} "
          f"| {float(a['train_loss']):.6f} | {float(b['train_loss']):.6f} |")
log = open(f"{out}/ranks.log").read()
m = re.search(r"gradient exchange: .*", log)
print(m.group(0) if m else "gradient exchange: not reported")
PY
