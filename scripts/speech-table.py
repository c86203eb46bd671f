#!/usr/bin/env python3
"""The speech denoising table (issue 20): train ae-tch's denoiser on six of data/speech's
spoken words (a folder, each word its own series), add white Gaussian noise at 0, 5 and 10 dB SNR to the two held-out words,
and compare the SNR after `ae-tch denoise` with PCA on the same windows: the same
windowing (the run's window and hop), the same per-position
standard scaling fitted on the training windows, the same k, and the same sin²-tapered
overlap-add as src/data/series.rs. Called by scripts/speech-table.sh; prints a table.
"""
import os
import subprocess
import sys
import wave

import numpy as np

WINDOW, HOP, K, SIGMA, EPOCHS = 256, 32, 64, 0.6, 10
TRAIN = ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Side_Left", "Side_Right"]
HELD_OUT = ["Rear_Left", "Rear_Right"]


def read(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def write(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())


def starts(n):
    count = 1 if n <= WINDOW else -(-(n - WINDOW) // HOP) + 1
    return [min(i * HOP, n - WINDOW) for i in range(count)]


def frame(x):
    return np.stack([x[s:s + WINDOW] for s in starts(len(x))])


def overlap_add(windows, n):
    taper = np.sin(np.pi * (np.arange(WINDOW) + 0.5) / WINDOW) ** 2
    total, weight = np.zeros(n), np.zeros(n)
    for s, row in zip(starts(n), windows):
        total[s:s + WINDOW] += taper * row
        weight[s:s + WINDOW] += taper
    return total / weight


def snr(clean, x):
    return 10 * np.log10(np.sum(clean ** 2) / np.sum((clean - x) ** 2))


def main():
    binary, speech, out = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    # The run's data: a folder of the six training words (each its own series, no
    # window crosses two) and a folder of the two held-out words as --test.
    folders = {"train": TRAIN, "test": HELD_OUT}
    for name, words in folders.items():
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for w in words:
            link = os.path.join(out, name, w + ".wav")
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(speech, w + ".wav")), link)
    run = os.path.join(out, "run")
    subprocess.run([binary, "train", "--data", os.path.join(out, "train"), "--test", os.path.join(out, "test"),
                    "--domain", "wave", "--window", str(WINDOW), "--hop", str(HOP), "--mode", "denoise", "--sigma", str(SIGMA),
                    "--hidden", "512,256", "--latent", str(K), "--epochs", str(EPOCHS), "--out", run, "--force",
                    "--no-tensorboard", "--quiet"], check=True, stdout=subprocess.DEVNULL)
    # PCA on the windows the run trained on (every training word's, validation included:
    # the rows its scaling was fitted on), scaled the same way, k components.
    windows = np.concatenate([frame(read(os.path.join(speech, w + ".wav")) / 32768.0) for w in TRAIN])
    mean, std = windows.mean(0), windows.std(0)
    std[std == 0] = 1
    _, _, vt = np.linalg.svd((windows - mean) / std, full_matrices=False)
    basis = vt[:K]
    rng = np.random.default_rng(1)
    print(f"{'word':<12}{'input dB':>10}{'ae-tch dB':>11}{'gain':>8}{'PCA dB':>9}{'gain':>8}")
    for word in HELD_OUT:
        clean = read(os.path.join(speech, word + ".wav"))
        power = np.mean(clean ** 2)
        for level in [0, 5, 10]:
            noisy = clean + rng.normal(0, np.sqrt(power / 10 ** (level / 10)), len(clean))
            name = f"{word}-{level}dB"
            write(os.path.join(out, name + ".wav"), noisy)
            subprocess.run([binary, "denoise", "--run", run, os.path.join(out, name + ".wav"), "-o",
                            os.path.join(out, "denoised")], check=True, stdout=subprocess.DEVNULL)
            ours = read(os.path.join(out, "denoised", name + "-denoised.wav"))
            scaled = (frame(np.clip(np.round(noisy), -32768, 32767) / 32768.0) - mean) / std
            pca = overlap_add(((scaled @ basis.T) @ basis) * std + mean, len(clean)) * 32768.0
            pca = np.clip(np.round(pca), -32768, 32767)
            before = snr(clean, np.clip(np.round(noisy), -32768, 32767))
            a, p = snr(clean, ours), snr(clean, pca)
            print(f"{word:<12}{before:>10.2f}{a:>11.2f}{a - before:>+8.2f}{p:>9.2f}{p - before:>+8.2f}")


if __name__ == "__main__":
    main()
