#!/usr/bin/env bash
# Issue 37 §1's table: speech denoising on speakers and sentences the model never heard, at
# 0, 5, 10 and 20 dB input SNR in white and babble noise, for ae-tch's denoiser (its
# defaults for WAV files: the spectral domain) beside the noisy input, spectral gating
# (noisereduce, what a Python user reaches for) and a Wiener filter whose noise comes from
# the first frames; PESQ (wide band), STOI and SNR, then the goal checked case by case
# (above noisereduce on PESQ and STOI, never below the input's SNR) and denoise's speed.
#
# Speech from registries only, into data/speech-bench/ (made once):
#   - Debian's espeak-ng synthesizes sentences in several voices (22.05 kHz, resampled to
#     16 kHz): four voices to train on, a fifth (and its sentences) held out for testing,
#     and five more voices whose other sentences make the test-time babble;
#   - Debian's pocketsphinx-testdata carries real recorded speech at 16 kHz: its LibriVox
#     reader trains, its "cards" speaker is held out for testing.
# The metrics come from PyPI (pesq, pystoi, noisereduce), installed into .venv on demand.
#   scripts/speech-table.sh [--wave] [EPOCHS] [SEED]     (defaults: 20 epochs, seed 1)
# --wave: the waveform denoiser instead (--domain wave --window 256 --hop 32 --sigma 0.6
# --hidden 512,256 --latent 64, what the guide advised before the spectral domain).
# Runs land in runs/speech-bench/. (scripts/demo.sh --signals has the quick six-words
# table of issue 20.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
py=.venv/bin/python
"$py" -c 'import pesq, pystoi, noisereduce' 2>/dev/null \
  || "$py" -m pip install --quiet pesq==0.0.4 pystoi==0.4.1 noisereduce==3.0.3

bench=data/speech-bench
if [ ! -f "$bench/.done" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # espeak-ng and the libraries it loads (libpulse's libsndfile and codecs among them).
  (cd "$tmp" && apt-get download espeak-ng libespeak-ng1 espeak-ng-data libpcaudio0 \
    libsonic0 libpulse0 libasound2 libasyncns0 libsndfile1 libflac12 libmp3lame0 \
    libmpg123-0 libogg0 libopus0 libvorbis0a libvorbisenc2 pocketsphinx-testdata >/dev/null)
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/x"; done
  lib="$tmp/x/usr/lib/x86_64-linux-gnu"
  export ESPEAK_BIN="$tmp/x/usr/bin/espeak-ng" ESPEAK_LIB="$lib:$lib/pulseaudio" ESPEAK_DATA="$lib"
  export SPHINX_DATA="$tmp/x/usr/share/pocketsphinx/test/data"
  "$py" scripts/speech_bench.py make "$bench"
  touch "$bench/.done"
fi
flags=()
if [ "${1:-}" = --wave ]; then
  flags=(--domain wave --window 256 --hop 32 --sigma 0.6 --hidden 512,256 --latent 64)
  shift
fi
exec "$py" scripts/speech_bench.py run "$bench" target/release/ae-tch runs/speech-bench \
  "${1:-20}" "${2:-1}" "${flags[@]}"
