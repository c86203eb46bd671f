#!/usr/bin/env python3
"""Load ae-tch's exported weights in PyTorch (and make weights `ae-tch import` reads).

A user file: copy it beside your script (it needs torch, numpy and safetensors only) and
`from ae_tch_torch import Autoencoder`; docs/guide/export.md shows how. The tests
(tests/it/ecosystem.rs) drive it from the command line as below.

It builds the torch.nn model that ae-tch's model.json describes, as an `encoder` and a
`decoder` nn.Sequential whose positions match ae-tch's names (`encoder.0.weight`, ...):
MLP (Linear layers, activations between them, a sigmoid at the end for images, none for
vectors) or conv (Unflatten to
C×H×W, per level a stride-2 Conv2d, optional GroupNorm, activation and residual blocks
(`ResBlock`: conv1, norm1, conv2, norm2), Flatten, Linear; mirrored with residual blocks and
ConvTranspose2d, cropped where the encoder's size was odd, or Upsample + Conv2d).

  ae_tch_torch.py check MODEL_JSON WEIGHTS.safetensors AE_TCH_RECON.npy [INPUTS.npy]
      load ae-tch's exported weights, reconstruct the test images, print the largest
      absolute difference from ae-tch's reconstructions (`ae-tch encode --decode`)
  ae_tch_torch.py make MODEL_JSON OUT.safetensors OUT_RECON.npy SEED [INPUTS.npy]
      build the model with torch's own initialisation, save its state dict as safetensors,
      and save its reconstructions of the test images

The test images are the run's IDX t10k file, or the rows of INPUTS.npy (values in [0, 1],
C·H·W per row, channel planes first; for vector runs the scaled features) when given.
  ae_tch_torch.py diff A.npy B.npy
      print the largest absolute difference between the reconstruction columns
"""
import gzip
import json
import math
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ACTIVATIONS = {"relu": torch.nn.ReLU, "leaky-relu": torch.nn.LeakyReLU, "tanh": torch.nn.Tanh,
               "gelu": torch.nn.GELU}


class Crop(torch.nn.Module):
    def __init__(self, h, w):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x):
        return x[:, :, :self.h, :self.w]


class ResBlock(torch.nn.Module):
    """act(x + norm2(conv2(act(norm1(conv1(x)))))), the norms only with GroupNorm."""

    def __init__(self, c, groups, act):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1)
        if groups:
            self.norm1 = torch.nn.GroupNorm(groups, c)
            self.norm2 = torch.nn.GroupNorm(groups, c)
        else:
            self.norm1 = self.norm2 = torch.nn.Identity()
        self.act = act()

    def forward(self, x):
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(x + self.norm2(self.conv2(h)))


def shape(cfg):
    spec = cfg["input"]
    if spec.get("kind") == "vector":
        return len(spec["columns"]), 1, 1
    return (3 if spec["color"] == "rgb" else 1), spec["height"], spec["width"]


def bounded(cfg):
    """Images end in a sigmoid; scaled vector features are unbounded."""
    return cfg["input"].get("kind") != "vector"


class Autoencoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        layers = cfg["layers"]
        assert not cfg["variational"] and not layers.get("tied_weights"), "plain models only"
        act = ACTIVATIONS[cfg.get("activation", "relu")]
        c, h, w = shape(cfg)
        if layers["kind"] == "conv":
            self.encoder, self.decoder = conv(cfg, act, c, h, w)
            return
        w = [c * h * w, *layers["hidden"], cfg["latent"]]
        enc, dec = [], []
        for i, (a, b) in enumerate(zip(w, w[1:])):
            enc += [torch.nn.Linear(a, b)] + ([act()] if i < len(w) - 2 else [])
        r = w[::-1]
        for i, (a, b) in enumerate(zip(r, r[1:])):
            dec += [torch.nn.Linear(a, b)]
            if i < len(r) - 2:
                dec.append(act())
            elif bounded(cfg):
                dec.append(torch.nn.Sigmoid())
        self.encoder = torch.nn.Sequential(*enc)
        self.decoder = torch.nn.Sequential(*dec)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def conv(cfg, act, c, h, w):
    layers = cfg["layers"]
    chans = layers["channels"]
    blocks = layers.get("blocks", 0)
    groups = layers.get("groups", 0)
    resize = layers.get("upsample", "transpose") == "resize"

    def norm(ch):
        return [torch.nn.GroupNorm(math.gcd(groups, ch), ch)] if groups else []

    def res(ch):
        # gcd(0, ch) is ch: without a norm (groups 0) the blocks get none.
        return [ResBlock(ch, math.gcd(groups, ch) if groups else 0, act) for _ in range(blocks)]

    sizes = [(h, w)]
    for _ in chans:
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    enc = [torch.nn.Unflatten(1, (c, h, w))]
    for a, b in zip([c, *chans], chans):
        enc += [torch.nn.Conv2d(a, b, 3, stride=2, padding=1), *norm(b), act(), *res(b)]
    fh, fw = sizes[-1]
    flat = chans[-1] * fh * fw
    enc += [torch.nn.Flatten(), torch.nn.Linear(flat, cfg["latent"])]
    dec = [torch.nn.Linear(cfg["latent"], flat), act(), torch.nn.Unflatten(1, (chans[-1], fh, fw))]
    for i in reversed(range(len(chans))):
        out = c if i == 0 else chans[i - 1]
        (th, tw), (sh, sw) = sizes[i], sizes[i + 1]
        dec += res(chans[i])
        if resize:
            dec += [torch.nn.Upsample(size=(th, tw), mode="nearest"),
                    torch.nn.Conv2d(chans[i], out, 3, padding=1)]
        else:
            dec.append(torch.nn.ConvTranspose2d(chans[i], out, 3, stride=2, padding=1,
                                                output_padding=1))
            if (th, tw) != (2 * sh, 2 * sw):
                dec.append(Crop(th, tw))
        dec += [torch.nn.Sigmoid()] if i == 0 else [*norm(out), act()]
    dec.append(torch.nn.Flatten())
    return torch.nn.Sequential(*enc), torch.nn.Sequential(*dec)


def test_images(manifest):
    raw = gzip.open(f"{manifest['data']['path']}/t10k-images-idx3-ubyte.gz").read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    x = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, h * w)
    return torch.from_numpy(x.astype(np.float32)) / 255.0


def reconstruct(model, manifest, inputs=None):
    x = test_images(manifest) if inputs is None else torch.from_numpy(
        np.load(inputs).astype(np.float32))
    with torch.no_grad():
        return model(x).numpy()


def pixels(npy, d):
    a = np.load(npy)
    return a[:, a.shape[1] - d:]  # ae-tch puts index (and label) columns first


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "diff":
        a, b = np.load(args[0]), np.load(args[1])
        d = min(a.shape[1], b.shape[1])
        print(f"max_abs_diff {np.abs(a[:, -d:] - b[:, -d:]).max():.3e}")
        return
    manifest = json.load(open(args[0]))
    cfg = manifest["model"]
    c, h, w = shape(cfg)
    d = c * h * w
    model = Autoencoder(cfg)
    if cmd == "check":
        model.load_state_dict(load_file(args[1]), strict=True)
        ours = reconstruct(model, manifest, args[3] if len(args) > 3 else None)
        theirs = pixels(args[2], d)
        assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
        print(f"max_abs_diff {np.abs(ours - theirs).max():.3e}")
    elif cmd == "make":
        torch.manual_seed(int(args[3]))
        model = Autoencoder(cfg)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args[1])
        inputs = args[4] if len(args) > 4 else None
        np.save(args[2], reconstruct(model, manifest, inputs).astype(np.float64))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
