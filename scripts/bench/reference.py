#!/usr/bin/env python3
"""The PyTorch loop an ML practitioner would write for workload W1, kept as the reference
that scripts/bench.sh measures ae-tch against. Same libtorch (the project's .venv torch).

W1: Fashion-MNIST 60k train images, MLP 784-256-64-16 with a mirrored decoder, ReLU,
sigmoid output, MSE, Adam lr 1e-3, batch 128, denoising with Gaussian σ = 0.3 (input
clamped to [0, 1]), CPU.

--loader tensor      the good loop: data pre-loaded as one float tensor, randperm batches,
                     zero_grad(set_to_none=True), loss summed on the device (no per-step
                     .item()).
--loader dataloader  the idiomatic loop: TensorDataset + DataLoader(shuffle=True).

--model-json PATH    W2: the network of an ae-tch run (its model.json) instead of W1's
--reconstruct        W2: plain reconstruction, no noise

--flush-denormal     torch.set_flush_denormal(True) first: subnormal numbers read and
                     written as zero, which keeps the loop from slowing down as training
                     drives values towards zero (the best CPU loop a user can write).

--compile            torch.compile the model and the optimiser's step (inductor; the loop
                     PyTorch 2 recommends); its first epoch includes compiling (the last,
                     shorter batch compiles a second graph), so the steady state is the
                     later epochs, and compile_seconds estimates the compiling: the first
                     epoch's time less a later epoch's.

--conv-defaults      W2 with the conv defaults' own settings: batch 64 and Adam at 3e-3 with
                     a warm-up over 5% of the steps and a cosine decay to 0, set per batch
                     (ae-tch's warmup-cosine) instead of batch 128 at a constant 1e-3.

--device cuda        the same loop on a GPU (data resident on the device, synchronised
                     at the end of each epoch); --precision bf16 wraps the forward pass
                     and loss in torch.autocast(dtype=torch.bfloat16), the usual AMP recipe.

Prints one JSON object: samples_per_s (mean over epochs), sec_per_epoch, final_loss (mean
training loss of the last epoch), and per epoch: epoch_samples_per_s, epoch_losses.
"""
import argparse
import gzip
import json
import math
import time

import torch
from torch import nn


def load_images(path):
    raw = gzip.open(path).read()
    n, h, w = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(n, h * w)


def model():
    widths = [784, 256, 64, 16]
    enc, dec = [], []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        enc += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(widths) - 2 else [])
    back = widths[::-1]
    for i, (a, b) in enumerate(zip(back, back[1:])):
        dec += [nn.Linear(a, b), nn.ReLU() if i < len(back) - 2 else nn.Sigmoid()]
    return nn.Sequential(*enc, *dec)


def model_from_json(path):
    """The network an ae-tch run's model.json describes (workload W2), built by the
    exporter's client so the layers are the ones ae-tch trains."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    from ae_tch_torch import Autoencoder
    return Autoencoder(json.load(open(path))["model"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/fashion-mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--loader", choices=["tensor", "dataloader"], default="tensor")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--flush-denormal", action="store_true")
    p.add_argument("--model-json", help="W2: train this ae-tch run's network instead")
    p.add_argument("--reconstruct", action="store_true", help="no noise (W2)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--conv-defaults", action="store_true")
    a = p.parse_args()
    if a.flush_denormal and not torch.set_flush_denormal(True):
        raise SystemExit("this CPU cannot flush denormals")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    x_all = (load_images(f"{a.data}/train-images-idx3-ubyte.gz").float() / 255.0).to(dev)
    n, sigma = x_all.shape[0], (0.0 if a.reconstruct else 0.3)
    bs = 64 if a.conv_defaults else 128
    net = (model_from_json(a.model_json) if a.model_json else model()).to(dev)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")
    if a.conv_defaults:
        # Adam (ae-tch's AdamW at its default decay of 0) at 3e-3, warmed up over the first
        # 5% of the steps, then a cosine to 0 (a tensor rate, so that a compiled step does
        # not recompile as the rate changes).
        opt = torch.optim.Adam(net.parameters(), lr=torch.tensor(3e-3))
        steps = a.epochs * -(-n // bs)
        warm = max(1, math.ceil(steps * 0.05))
        rate = lambda t: (3e-3 * (t + 1) / warm if t < warm else
                          1.5e-3 * (1 + math.cos(math.pi * (t - warm) / max(1, steps - warm))))
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        rate = None
    loss_fn = nn.MSELoss()
    step = opt.step
    if a.compile:
        net = torch.compile(net)
        step = torch.compile(opt.step)
    if a.loader == "dataloader":
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x_all), batch_size=bs, shuffle=True
        )
    rates, times, losses, final, t = [], [], [], None, 0
    for _ in range(a.epochs):
        start = time.perf_counter()
        total = torch.zeros((), device=dev)
        if a.loader == "tensor":
            order = torch.randperm(n, device=dev)
            batches = (x_all[order[i : i + bs]] for i in range(0, n, bs))
        else:
            batches = (b for (b,) in loader)
        for x in batches:
            x = x.to(dev, non_blocking=True)
            noisy = (x + sigma * torch.randn_like(x)).clamp_(0.0, 1.0) if sigma else x
            with amp:
                loss = loss_fn(net(noisy), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if rate is not None:
                opt.param_groups[0]["lr"].fill_(rate(t))
                t += 1
            step()
            total += loss.detach() * x.shape[0]
        final = total.item() / n  # waits for the device
        losses.append(final)
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        rates.append(n / elapsed)
    later = sorted(times[1:])
    print(json.dumps({
        "compile_seconds": (times[0] - later[len(later) // 2]) if a.compile and later else 0.0,
        "samples_per_s": sum(rates) / len(rates),
        "sec_per_epoch": sum(times) / len(times),
        "final_loss": final,
        "epoch_samples_per_s": rates,
        "epoch_losses": losses,
    }))


if __name__ == "__main__":
    main()
