"""Issue 37 §1's speech benchmark (run through scripts/speech-table.sh).

`make DIR`: writes DIR/train/*.wav (four espeak-ng voices and the LibriVox reader),
DIR/test/*.wav (a fifth voice's own sentences and the "cards" speaker) and DIR/babble.wav,
all 16 kHz mono 16-bit.

`run DIR BIN OUT EPOCHS SEED [FLAGS...]`: trains ae-tch's denoiser on DIR/train (with
`train --mode denoise FLAGS`), adds white and
babble noise to every test file at 0, 5, 10 and 20 dB SNR (a fixed seed), cleans the
noisy files with ae-tch, noisereduce and a Wiener filter, and prints the mean PESQ (wide
band), STOI and SNR of each, with the noisy input's.
"""

import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

RATE = 16000
TRAIN_VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland+m3"]
TEST_VOICE = "en-gb-x-rp+f2"
BABBLE_VOICES = ["en-gb-x-gbclan", "en-us+m7", "en-us+f4", "en-gb+m2", "en-gb-x-rp"]
SENTENCES = [
    "A light wind moved the tall grass along the river bank.",
    "She counted seven boats before the harbour lights came on.",
    "Please bring the blue folder to the meeting on Thursday.",
    "The old clock in the hall stopped just after midnight.",
    "We watched the storm roll over the hills from the porch.",
    "His brother fixed the broken gate with a piece of wire.",
    "Fresh bread and warm soup waited for them in the kitchen.",
    "The children sang quietly while the train crossed the bridge.",
    "A narrow path leads through the forest to a small lake.",
    "Turn the dial slowly until the needle points to nine.",
    "The market was crowded with people buying fruit and fish.",
    "Every morning the baker opens his shop at half past six.",
]
TEST_SENTENCES = [
    "The pilot checked the weather twice before the long flight.",
    "Our neighbours planted roses and tulips along the fence.",
    "Nobody noticed the letter hidden under the heavy carpet.",
    "Keep the window open so that the room stays cool tonight.",
]
BABBLE_SENTENCES = [
    "Several trucks were parked outside the factory gates.",
    "The museum closes early on the first Monday of the month.",
    "Music drifted up from the cafe across the square.",
    "They argued for hours about the best way to cook rice.",
]


def write_wav(path, x):
    x = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(x.tobytes())


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        rate, n, width = w.getframerate(), w.getnframes(), w.getsampwidth()
        data = w.readframes(n)
        channels = w.getnchannels()
    x = np.frombuffer(data, dtype={1: "u1", 2: "<i2", 4: "<i4"}[width]).astype(np.float64)
    x = x.reshape(-1, channels)[:, 0]
    x = (x - 128) / 128 if width == 1 else x / float(2 ** (8 * width - 1))
    return to_16k(x, rate)


def to_16k(x, rate):
    from math import gcd

    from scipy.signal import resample_poly

    if rate == RATE:
        return x
    g = gcd(rate, RATE)
    return resample_poly(x, RATE // g, rate // g)


def speak(voice, text, out):
    env = dict(os.environ, LD_LIBRARY_PATH=os.environ["ESPEAK_LIB"])
    raw = out.with_suffix(".22k.wav")
    subprocess.run(
        [os.environ["ESPEAK_BIN"], "--path=" + os.environ["ESPEAK_DATA"], "-v", voice,
         "-w", str(raw), text],
        check=True, env=env,
    )
    x = read_wav(raw)
    raw.unlink()
    write_wav(out, 0.9 * x / max(np.abs(x).max(), 1e-9))


def make(root):
    root = Path(root)
    for d in ("train", "test"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for v, voice in enumerate(TRAIN_VOICES):
        for s, text in enumerate(SENTENCES):
            speak(voice, text, root / "train" / f"synth-v{v}-s{s:02}.wav")
    for s, text in enumerate(TEST_SENTENCES):
        speak(TEST_VOICE, text, root / "test" / f"synth-heldout-s{s}.wav")
    sphinx = Path(os.environ["SPHINX_DATA"])
    for f in sorted((sphinx / "librivox").glob("*.wav")):
        write_wav(root / "train" / f"librivox-{f.stem[-4:]}.wav", read_wav(f))
    for f in sorted((sphinx / "cards").glob("*.wav")):
        write_wav(root / "test" / f"cards-{f.stem}.wav", read_wav(f))
    # Babble: five other voices saying other sentences, each normalised, summed.
    parts = []
    tmp = root / "babble-part.wav"
    for voice in BABBLE_VOICES:
        speech = []
        for text in BABBLE_SENTENCES:
            speak(voice, text, tmp)
            speech.append(read_wav(tmp))
        talk = np.concatenate(speech)
        parts.append(talk / np.sqrt(np.mean(talk**2)))
    tmp.unlink()
    n = min(len(p) for p in parts)
    babble = sum(np.roll(p[:n], 3000 * i) for i, p in enumerate(parts))
    write_wav(root / "babble.wav", 0.9 * babble / np.abs(babble).max())


def snr_db(clean, x):
    return 10 * np.log10(np.sum(clean**2) / max(np.sum((clean - x) ** 2), 1e-20))


def noisy_version(clean, kind, snr, rng, babble):
    if kind == "white":
        noise = rng.standard_normal(len(clean))
    else:
        start = rng.integers(0, len(babble) - len(clean))
        noise = babble[start:start + len(clean)]
    gain = np.sqrt(np.mean(clean**2) / (np.mean(noise**2) * 10 ** (snr / 10)))
    return clean + gain * noise


def wiener(x, frames=6):
    """A Wiener filter with the noise power of the first `frames` STFT frames."""
    from scipy.signal import istft, stft

    _, _, spec = stft(x, RATE, nperseg=512, noverlap=384)
    noise = np.mean(np.abs(spec[:, :frames]) ** 2, axis=1, keepdims=True)
    power = np.abs(spec) ** 2
    gain = np.maximum(1 - noise / np.maximum(power, 1e-20), 0.1)
    _, y = istft(spec * gain, RATE, nperseg=512, noverlap=384)
    return y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))


def scores(clean, x):
    from pesq import pesq
    from pystoi import stoi

    x = x[: len(clean)]
    try:
        p = pesq(RATE, clean, x, "wb")
    except Exception:  # PESQ refuses signals it finds no speech in
        p = float("nan")
    return p, stoi(clean, x, RATE, extended=False), snr_db(clean, x)


def run(root, binary, out, epochs, seed, flags):
    import noisereduce

    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model"
    train = [binary, "train", "--data", str(root / "train"), "--mode", "denoise", *flags,
             "--epochs", str(epochs), "--seed", str(seed), "--no-tensorboard", "--force",
             "--out", str(model)]
    subprocess.run(train, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = np.random.default_rng(seed)
    babble = read_wav(root / "babble.wav")
    noisy_dir = out / "noisy"
    noisy_dir.mkdir(exist_ok=True)
    cases = []
    for f in sorted((root / "test").glob("*.wav")):
        clean = read_wav(f)
        for kind in ("white", "babble"):
            for snr in (0, 5, 10, 20):
                noisy = noisy_version(clean, kind, snr, rng, babble)
                # Headroom so 16-bit files hold the noisy speech unclipped.
                scale = 0.99 / max(np.abs(noisy).max(), 1.0)
                path = noisy_dir / f"{f.stem}-{kind}-{snr}.wav"
                write_wav(path, noisy * scale)
                cases.append((f.stem, kind, snr, clean * scale, path))
    cleaned = out / "ae-tch"
    denoise = [binary, "denoise", "--run", str(model), "-o", str(cleaned)]
    started = time.time()
    subprocess.run(denoise + [str(c[4]) for c in cases], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.time() - started
    audio = sum(len(c[3]) for c in cases) / RATE
    rows = []
    for name, kind, snr, clean, path in cases:
        noisy = read_wav(path)
        outputs = {
            "noisy input": noisy,
            "ae-tch": read_wav(cleaned / f"{path.stem}-denoised.wav"),
            "noisereduce": noisereduce.reduce_noise(y=noisy, sr=RATE),
            "Wiener": wiener(noisy),
        }
        for method, x in outputs.items():
            p, s, d = scores(clean, x)
            rows.append(dict(file=name, noise=kind, snr=snr, method=method, pesq=p, stoi=s,
                             snr_out=d))
    with open(out / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    methods = ["noisy input", "ae-tch", "noisereduce", "Wiener"]
    print(f"mean over {len({r['file'] for r in rows})} held-out files "
          f"({epochs} epochs, seed {seed}); PESQ wb / STOI / SNR dB")
    print("| noise | input SNR | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for kind in ("white", "babble"):
        for snr in (0, 5, 10, 20):
            cells = []
            for m in methods:
                sel = [r for r in rows if (r["noise"], r["snr"], r["method"]) == (kind, snr, m)]
                mean = lambda k: np.nanmean([r[k] for r in sel])
                cells.append(f"{mean('pesq'):.2f} / {mean('stoi'):.3f} / {mean('snr_out'):.1f}")
            print(f"| {kind} | {snr} dB | " + " | ".join(cells) + " |")
    print(f"ae-tch denoise: {audio:.0f} s of audio in {seconds:.1f} s "
          f"({audio / seconds:.0f}x real time, model load included)")
    verdict(rows)


def verdict(rows):
    """Issue 37's goal, case by case: ae-tch above noisereduce on PESQ and STOI, and never
    below its input's SNR."""
    misses = []
    for kind in ("white", "babble"):
        for snr in (0, 5, 10, 20):
            def mean(method, k):
                sel = [r[k] for r in rows if (r["noise"], r["snr"], r["method"]) == (kind, snr, method)]
                return np.nanmean(sel)
            for k in ("pesq", "stoi"):
                if mean("ae-tch", k) <= mean("noisereduce", k):
                    misses.append(f"{kind} {snr} dB: {k} {mean('ae-tch', k):.3f} <= "
                                  f"noisereduce {mean('noisereduce', k):.3f}")
            if mean("ae-tch", "snr_out") < mean("noisy input", "snr_out"):
                misses.append(f"{kind} {snr} dB: SNR {mean('ae-tch', 'snr_out'):.1f} below the "
                              f"input's {mean('noisy input', 'snr_out'):.1f}")
    print("goal met in every case" if not misses else
          f"goal missed in {len(misses)} of 24 checks:\n  " + "\n  ".join(misses))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
            sys.argv[7:])
