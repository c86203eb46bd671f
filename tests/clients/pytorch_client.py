#!/usr/bin/env python3
"""A real PyTorch client of ae-tch's weights, driven by tests/it/ecosystem.rs.

It builds the torch.nn model that ae-tch's model.json describes (MLP: Linear layers in an
`encoder` and a `decoder` nn.Sequential, activations between them, a sigmoid at the end),
so that ae-tch's weight names (`encoder.0.weight`, ...) are its state-dict keys.

  pytorch_client.py check MODEL_JSON WEIGHTS.safetensors AE_TCH_RECON.npy
      load ae-tch's exported weights, reconstruct the test images, print the largest
      absolute difference from ae-tch's reconstructions (`ae-tch encode --decode`)
  pytorch_client.py make MODEL_JSON OUT.safetensors OUT_RECON.npy SEED
      build the model with torch's own initialisation, save its state dict as safetensors,
      and save its reconstructions of the test images
  pytorch_client.py diff A.npy B.npy
      print the largest absolute difference between the reconstruction columns
"""
import gzip
import json
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ACTIVATIONS = {"relu": torch.nn.ReLU, "leaky-relu": torch.nn.LeakyReLU, "tanh": torch.nn.Tanh,
               "gelu": torch.nn.GELU}


class Autoencoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg["arch"] == "mlp" and not cfg.get("tied_weights"), "MLP models only"
        act = ACTIVATIONS[cfg.get("activation", "relu")]
        w = [cfg["height"] * cfg["width"], *cfg["hidden"], cfg["latent"]]
        enc, dec = [], []
        for i, (a, b) in enumerate(zip(w, w[1:])):
            enc += [torch.nn.Linear(a, b)] + ([act()] if i < len(w) - 2 else [])
        r = w[::-1]
        for i, (a, b) in enumerate(zip(r, r[1:])):
            dec += [torch.nn.Linear(a, b), act() if i < len(r) - 2 else torch.nn.Sigmoid()]
        self.encoder = torch.nn.Sequential(*enc)
        self.decoder = torch.nn.Sequential(*dec)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def test_images(manifest):
    raw = gzip.open(f"{manifest['data']['path']}/t10k-images-idx3-ubyte.gz").read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    x = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, h * w)
    return torch.from_numpy(x.astype(np.float32)) / 255.0


def reconstruct(model, manifest):
    with torch.no_grad():
        return model(test_images(manifest)).numpy()


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
    d = cfg["height"] * cfg["width"]
    model = Autoencoder(cfg)
    if cmd == "check":
        model.load_state_dict(load_file(args[1]), strict=True)
        ours = reconstruct(model, manifest)
        theirs = pixels(args[2], d)
        assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
        print(f"max_abs_diff {np.abs(ours - theirs).max():.3e}")
    elif cmd == "make":
        torch.manual_seed(int(args[3]))
        model = Autoencoder(cfg)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args[1])
        np.save(args[2], reconstruct(model, manifest).astype(np.float64))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
