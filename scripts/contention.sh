#!/usr/bin/env bash
# A busy machine: how long a small training (the first 4,000 rows of data/shuttle, the
# defaults) and a W1-size one (Fashion-MNIST, the MLP 784-256-64-16 denoising at batch 128,
# one epoch) take alone and beside one and two CPU-bound processes, each at the default
# thread count, at --threads 1, and at the default threads with libgomp's own spinning
# (GOMP_SPINCOUNT=300000, what ae-tch ran with before it set its own; see src/omp.rs).
# The busy processes are libtorch programs (a 512x512 matrix product in a loop at their
# default threads, as another training would be); `--busy python` uses plain Python loops
# (one thread each) instead. Each time is the median of --repeat runs (3). Prints a table;
# never run by the tests.
#
#   scripts/contention.sh [--repeat N] [--busy torch|python]
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=3
busy_kind=torch
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --busy) busy_kind="$2"; shift 2 ;;
    *) echo "contention: unknown argument $1 (--repeat N, --busy torch|python)" >&2; exit 2 ;;
  esac
done
case "$busy_kind" in torch|python) ;; *) echo "contention: --busy is torch or python" >&2; exit 2 ;; esac
scripts/setup.sh
[ -f data/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "contention: data/fashion-mnist is missing" >&2; exit 1; }
cargo build --release --locked --quiet
bin=target/release/ae-tch
work=$(mktemp -d)
pids=()
stop_busy() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_busy; rm -rf "$work"' EXIT
head -4001 data/shuttle/shuttle.csv > "$work/small.csv"

small=(train --data "$work/small.csv" --label-column class)
w1=(train --data data/fashion-mnist --mode denoise --sigma 0.3 --hidden 256,64 --latent 16
    --epochs 1 --batch-size 128 --lr 1e-3 --lr-schedule constant --val-fraction 0 --seed 1)

# Median wall time of `repeat` runs of ae-tch ARGS... (env assignments first, then args).
timed() {
  local times=()
  for _ in $(seq "$repeat"); do
    local start end
    start=$(date +%s.%N)
    env "$@" --out "$work/run" --force >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    end=$(date +%s.%N)
    times+=("$(python3 -c "print(f'{$end - $start:.2f}')")")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (repeat + 1) / 2 ))p"
}

start_busy() {
  local n=$1
  for _ in $(seq "$n"); do
    if [ "$busy_kind" = torch ]; then
      .venv/bin/python -c 'import torch
a = torch.randn(512, 512)
while True: a @ a' &
    else
      python3 -c 'while True: pass' &
    fi
    pids+=($!)
  done
  sleep 2 # let them start
}

echo "CPU: $(nproc) cores; busy processes: $busy_kind; median of $repeat runs, seconds"
printf '%-10s %-12s %10s %12s %10s %18s\n' workload beside default "--threads 1" ratio "libgomp's spin"
for name in small w1; do
  declare -n args=$name
  for n in 0 1 2; do
    start_busy "$n"
    default=$(timed "$bin" "${args[@]}")
    one=$(timed "$bin" "${args[@]}" --threads 1)
    spin=$(timed GOMP_SPINCOUNT=300000 "$bin" "${args[@]}")
    stop_busy
    ratio=$(python3 -c "print(f'{$default / $one:.2f}x')")
    printf '%-10s %-12s %10s %12s %10s %18s\n' "$name" "$n busy" "$default" "$one" "$ratio" "$spin"
  done
done
