#!/usr/bin/env bash
# Issue 20's speech table: ae-tch's denoiser trained on six of data/speech's words, the
# two held-out words at 0, 5 and 10 dB input SNR, beside PCA with the same k on the same
# windows, scaling and overlap-add (scripts/speech-table.py). Runs land in runs/speech-table/.
# About 11 s on 2 cores after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
exec .venv/bin/python scripts/speech-table.py target/release/ae-tch data/speech runs/speech-table
