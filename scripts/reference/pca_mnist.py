#!/usr/bin/env python3
"""Reference figures for the PCA baseline, computed with PyTorch (the project's .venv):
PCA fitted on all data/mnist training images, squared error per test image at several k.

    .venv/bin/python scripts/reference/pca_mnist.py

Measured (2026-11-29): k=16 21.102, k=30 14.023, k=32 13.323. tests/it/quality.rs checks
ae-tch's own PCA against the k=30 figure; the published full-MNIST value is 13.87.
"""
import gzip

import torch


def load(path):
    raw = gzip.open(path).read()[16:]
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).double().view(-1, 784) / 255


train = load("data/mnist/train-images-idx3-ubyte.gz")
test = load("data/mnist/t10k-images-idx3-ubyte.gz")
mean = train.mean(0)
_, _, vh = torch.linalg.svd(train - mean, full_matrices=False)
for k in (16, 30, 32):
    v = vh[:k]
    rec = (test - mean) @ v.T @ v + mean
    print(f"k={k} squared error per image {((rec - test) ** 2).sum(1).mean().item():.3f}")
