#!/usr/bin/env python3
"""Reference SSIM for src/metrics/ssim.rs, written independently: an explicit loop over
every valid 11x11 window (no convolution), Gaussian weights with sigma 1.5, 8-bit
constants. Images are two fixed 28x28 patterns, so nothing depends on data files.

    .venv/bin/python scripts/reference/ssim_reference.py   # prints 0.0558666629
"""
import math

W, H, WIN, SIGMA = 28, 28, 11, 1.5
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

a = [float(round(((i * 7) % 256) / 255 * 255)) for i in range(W * H)]
b = [float(round(((i * 13 + 5) % 256) / 255 * 255)) for i in range(W * H)]
g = [math.exp(-((k - (WIN - 1) / 2) ** 2) / (2 * SIGMA * SIGMA)) for k in range(WIN)]
wts = [[g[i] * g[j] for j in range(WIN)] for i in range(WIN)]
total = sum(map(sum, wts))
wts = [[v / total for v in row] for row in wts]

scores = []
for y in range(H - WIN + 1):
    for x in range(W - WIN + 1):
        def wsum(f):
            return sum(wts[i][j] * f((y + i) * W + x + j) for i in range(WIN) for j in range(WIN))
        ma, mb = wsum(lambda k: a[k]), wsum(lambda k: b[k])
        va = wsum(lambda k: a[k] ** 2) - ma * ma
        vb = wsum(lambda k: b[k] ** 2) - mb * mb
        cov = wsum(lambda k: a[k] * b[k]) - ma * mb
        scores.append(((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2)))
print(f"{sum(scores) / len(scores):.10f}")
