#!/usr/bin/env bash
# The whole test suite: sets up what is missing, then checks formatting, lints, and runs
# every unit and integration test (release profile, so the build is shared with demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
start=$SECONDS
echo "== cargo fmt --check" >&2
cargo fmt --check
echo "== cargo clippy" >&2
cargo clippy --release --locked --all-targets -- -D warnings
echo "== cargo test" >&2
cargo test --release --locked
echo "test.sh: finished in $((SECONDS - start)) s (after setup)" >&2
