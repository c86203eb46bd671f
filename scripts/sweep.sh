#!/usr/bin/env bash
# Issue 13's sweep of training defaults: sets up what is missing, builds ae-tch, and prints
# the markdown table of scripts/sweep/sweep.py for one set (levers, defaults or goals).
#   scripts/sweep.sh SET [--torch] [--only NAME,..] [--epochs N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release --locked --quiet
exec .venv/bin/python scripts/sweep/sweep.py "$@"
