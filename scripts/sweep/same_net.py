#!/usr/bin/env python3
"""The plain PyTorch script a user would write for the network an ae-tch run describes:
the reference every default in scripts/sweep.sh is held against.

  same_net.py RUN_DIR [--threads N]

Builds the run's network from its model.json with torch.nn (the exporter's client,
python/ae_tch_torch.py, so the layers are the ones ae-tch trains) with torch's own
initialisation, and trains it with the run's mode, noise, epochs, batch size, learning rate
and schedule: Adam, MSE, data pre-loaded as one tensor, randperm batches, flush-denormal on
(the best CPU loop a user can write). Trains on the same number of images as the run (its
training share, the rest held out as ae-tch does), evaluates on the run's t10k split.

Prints one JSON object: sq_err_per_image, psnr_db (of the mean squared error, against the
clean images, as ae-tch reports it), train_seconds.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
from ae_tch_torch import Autoencoder  # noqa: E402


def images(path, limit=None):
    raw = gzip.open(path).read()
    n, h, w = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(n, h * w)
    return (x[:limit] if limit else x).float() / 255.0


def corrupt(x, train, gen=None):
    if train["mode"] != "denoise":
        return x
    kind, level = train.get("noise", "gaussian"), train["noise_level"]
    if kind == "gaussian":
        return (x + level * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    if kind == "masking":
        return x * (torch.rand(x.shape, generator=gen) >= level)
    flip = torch.rand(x.shape, generator=gen) < level
    salt = (torch.rand(x.shape, generator=gen) < 0.5).float()
    return torch.where(flip, salt, x)


def lr_at(train, epoch, step, steps):
    lr, epochs, kind = train["lr"], train["epochs"], train.get("lr_schedule", "constant")
    if kind == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
    if kind == "warmup-cosine":
        total = epochs * steps
        warm = max(1, math.ceil(total * 0.05))
        t = (epoch - 1) * steps + step
        if t < warm:
            return lr * (t + 1) / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, total - warm)))
    return lr


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    m = json.load(open(os.path.join(args.run, "model.json")))
    train, data = m["train"], m["data"]
    torch.manual_seed(train["seed"])
    x = images(os.path.join(data["path"], "train-images-idx3-ubyte.gz"), train.get("limit"))
    x = x[torch.randperm(len(x))][: data["train_images"]]
    test = images(os.path.join(data["path"], "t10k-images-idx3-ubyte.gz"))
    model = Autoencoder(m["model"])
    opt = torch.optim.Adam(model.parameters(), lr=train["lr"])
    bs, steps = train["batch_size"], math.ceil(len(x) / train["batch_size"])
    start = time.perf_counter()
    for epoch in range(1, train["epochs"] + 1):
        order = torch.randperm(len(x))
        for step in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(train, epoch, step, steps)
            batch = x[order[step * bs : (step + 1) * bs]]
            loss = torch.nn.functional.mse_loss(model(corrupt(batch, train)), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        err = (model(corrupt(test, train, gen)) - test).square()
    per_image = err.sum(1)
    psnr = 10 * math.log10(1 / err.mean().item())
    print(json.dumps({"sq_err_per_image": per_image.mean().item(), "psnr_db": psnr,
                      "train_seconds": seconds}))


if __name__ == "__main__":
    main()
