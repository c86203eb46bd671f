#!/usr/bin/env bash
# Issue 37 §3: a long recording at hop 1. A 10-minute 16 kHz WAV cut into 256-step windows
# is trained (one epoch), scored (anomaly, per step) and denoised at hop 128 and at hop 1,
# each command's peak memory (GNU time's maximum resident set) and time side by side: at
# hop 1 its window matrix alone would be 9.8 GB. Goals checked at the end: under 1 GB at
# hop 1, at most 1.1× the peak at hop 128, and the time per epoch growing no faster than
# the number of windows (hop 128's epoch is the median of five: it lasts 0.4 s).
#
# The recording is made here (NumPy, seeded): a 220 Hz tone under a 3 Hz swell with
# noise, and a burst at 8 min 20 s (in the test part, the last 30%) that anomaly should
# point at.
#   scripts/long-series.sh [MINUTES]      (default 10)
# Runs land in runs/long-series/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
minutes=${1:-10}
out=runs/long-series
mkdir -p "$out"
wav=$out/recording-${minutes}min.wav
[ -f "$wav" ] || .venv/bin/python - "$wav" "$minutes" <<'EOF'
import sys, wave
import numpy as np
path, minutes = sys.argv[1], float(sys.argv[2])
rate = 16000
n = int(rate * 60 * minutes)
t = np.arange(n) / rate
x = 0.3 * np.sin(2 * np.pi * 3 * t) * np.sin(2 * np.pi * 220 * t)
x += 0.05 * np.random.default_rng(0).standard_normal(n)
burst = int(n * 500 / 600)
x[burst:burst + 4000] += 0.5 * np.sin(2 * np.pi * 1500 * t[:4000])
with wave.open(path, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
EOF
bin=target/release/ae-tch
# Runs `$@`, appends "peak_kb seconds" of it to $out/measure.
measure() {
  /usr/bin/time -f "%M %e" -o "$out/time" "$@" > "$out/last.log" 2>&1 \
    || { cat "$out/last.log"; exit 1; }
  cat "$out/time" >> "$out/measure"
}
: > "$out/measure"
: > "$out/found"
for hop in 128 1; do
  run=$out/hop$hop
  rm -rf "$run"
  # Five epochs at hop 128 (an epoch of 0.4 s: their median), one at hop 1.
  epochs=$([ "$hop" = 1 ] && echo 1 || echo 5)
  measure "$bin" train --data "$wav" --window 256 --hop "$hop" --epochs "$epochs" --seed 1 --out "$run" --quiet
  measure "$bin" anomaly --run "$run" -o "$run/steps.csv"
  grep "highest score" "$out/last.log" | sed "s/^/hop $hop: /" >> "$out/found"
  measure "$bin" denoise --run "$run" "$wav" -o "$run/denoised" --quiet
done
.venv/bin/python - "$out" <<'EOF'
import csv, json, sys
out = sys.argv[1]
m = [tuple(map(float, l.split())) for l in open(f"{out}/measure")]
rows = {}
for i, hop in enumerate([128, 1]):
    run = f"{out}/hop{hop}"
    model = json.load(open(f"{run}/model.json"))
    windows = model["data"]["train_images"] + model["data"]["val_images"]
    seconds = sorted(float(r["seconds"]) for r in csv.DictReader(open(f"{run}/metrics.csv")))
    epoch = seconds[len(seconds) // 2]
    rows[hop] = dict(windows=windows, epoch=epoch, train=m[3 * i], anomaly=m[3 * i + 1], denoise=m[3 * i + 2])
print(f"{'hop':>4} {'windows':>10} {'train GB':>9} {'train s':>8} {'epoch s':>8} {'µs/window':>10} "
      f"{'anomaly GB':>11} {'anomaly s':>10} {'denoise GB':>11} {'denoise s':>10}")
for hop, r in rows.items():
    print(f"{hop:>4} {r['windows']:>10} {r['train'][0] / 1e6:>9.2f} {r['train'][1]:>8.1f} {r['epoch']:>8.1f} "
          f"{1e6 * r['epoch'] / r['windows']:>10.2f} {r['anomaly'][0] / 1e6:>11.2f} {r['anomaly'][1]:>10.1f} "
          f"{r['denoise'][0] / 1e6:>11.2f} {r['denoise'][1]:>10.1f}")
print(open(f"{out}/found").read(), end="")
fine, coarse = rows[1], rows[128]
checks = []
for what in ["train", "anomaly", "denoise"]:
    peak, ratio = fine[what][0] / 1e6, fine[what][0] / coarse[what][0]
    checks.append((f"{what} at hop 1 under 1 GB ({peak:.2f} GB)", peak < 1.0))
    checks.append((f"{what} peak at hop 1 ≤ 1.1× hop 128 ({ratio:.2f}×)", ratio <= 1.1))
per = (fine["epoch"] / fine["windows"]) / (coarse["epoch"] / coarse["windows"])
checks.append((f"time per window at hop 1 ≤ at hop 128 ({per:.2f}×)", per <= 1.0))
for what, ok in checks:
    print(f"{'met   ' if ok else 'MISSED'} {what}")
EOF
