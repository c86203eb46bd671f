#!/usr/bin/env bash
# Issue 36's benchmark: ADBench's unsupervised protocol (stratified 70/30 split with the
# seed, fit on the 70% with its anomalies and no labels, score the 30%) on the 43 sets of
# its "Classical" folder, ae-tch's defaults beside PyOD's Isolation Forest, ECOD, HBOS, PCA
# and KNN on the same splits, all at one thread (scripts/adbench.py). Prints the per-set
# ROC-AUC table, the means, average ranks, wins and ae-tch's time per set.
#
# ADBench's data are on no package registry: make a copy of its public repository first,
#   git clone --depth 1 https://github.com/Minqi824/ADBench ../ADBench
# and pass it (or its adbench/datasets/Classical folder):
#   scripts/adbench.sh ../ADBench [--seeds 1 2 3] [--sets cover,cardio] [--label NAME]
#                                 [--ae-flags "--trim 0"]
# Runs and cached baseline scores land in runs/adbench/. The 43 sets, 3 seeds, take about
# an hour on 2 cores the first time (the baselines are then reused).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: scripts/adbench.sh ADBENCH_COPY [options]" >&2
  echo "ADBench's sets are on no package registry; make a copy of its repository first:" >&2
  echo "  git clone --depth 1 https://github.com/Minqi824/ADBench ../ADBench" >&2
  echo "then: scripts/adbench.sh ../ADBench" >&2
  [ $# -lt 1 ] && exit 0 || exit 2
fi
dir=$1
shift
[ -d "$dir/adbench/datasets/Classical" ] && dir="$dir/adbench/datasets/Classical"
if ! ls "$dir"/*.npz >/dev/null 2>&1; then
  echo "$dir holds no .npz sets: pass ADBench's repository or its adbench/datasets/Classical" >&2
  exit 2
fi
scripts/setup.sh
cargo build --release --locked --quiet
py=.venv/bin/python
if ! "$py" -c 'import importlib.metadata as m, sys; sys.exit(m.version("pyod") != "3.6.7")' 2>/dev/null; then
  echo "installing pyod==3.6.7 (and scikit-learn) into .venv for the baselines" >&2
  "$py" -m pip install --disable-pip-version-check --quiet "pyod==3.6.7"
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec "$py" scripts/adbench.py "$dir" "$@"
