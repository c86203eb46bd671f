#!/usr/bin/env python3
"""Issue 13's sweep: trains ae-tch with one setting changed at a time and prints a markdown
table of test squared error per image, PSNR and training time beside PCA with the same k
and, with --torch, the same network trained by a plain PyTorch script
(scripts/sweep/same_net.py). Run through scripts/sweep.sh, which builds and sets up first.

  sweep.py SET [--torch] [--only NAME,..] [--dataset mnist|fashion-mnist] [--epochs N]

Sets:
  levers    conv and MLP at k = 30 on data/mnist, 10 epochs, from the previous release's
            defaults to today's one lever per row, then one change from today's per row
  defaults  every architecture with its defaults at k = 30 on data/mnist and 20,000
            Fashion-MNIST images (use --torch for the same net in PyTorch)
  goals     issue 13's goal table (long: over an hour on 2 cores)
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "ae-tch")
MNIST, FASHION = "data/mnist", "data/fashion-mnist"

CONV = ["--arch", "conv", "--latent", "30"]
MLP = ["--arch", "mlp", "--latent", "30"]
TEN = ["--epochs", "10"]

OLD_OPT = ["--lr-schedule", "constant", "--lr", "1e-3", "--batch-size", "128"]

SETS = {
    "levers": [
        # The previous release's conv defaults, then one lever at a time towards today's
        # (32,64 channels, 1 residual block, GroupNorm, warmup-cosine 3e-3, batch 64).
        ("conv: previous defaults", MNIST, CONV + TEN + ["--blocks", "0", "--norm", "none"]
         + OLD_OPT),
        ("+ GroupNorm", MNIST, CONV + TEN + ["--blocks", "0"] + OLD_OPT),
        ("+ 1 residual block", MNIST, CONV + TEN + OLD_OPT),
        ("+ warmup-cosine 3e-3", MNIST, CONV + TEN + ["--batch-size", "128"]),
        ("+ batch 64 = conv default", MNIST, CONV + TEN),
        ("conv default, lr 2e-3", MNIST, CONV + TEN + ["--lr", "2e-3"]),
        ("conv default, resize up", MNIST, CONV + TEN + ["--upsample", "resize"]),
        ("conv default, no blocks", MNIST, CONV + TEN + ["--blocks", "0"]),
        ("mlp: previous defaults", MNIST, MLP + TEN + ["--hidden", "256,64"] + OLD_OPT),
        ("+ 512,128", MNIST, MLP + TEN + OLD_OPT),
        ("+ warmup-cosine 3e-3, batch 64 = mlp default", MNIST, MLP + TEN),
        ("mlp default, batch 32, lr 2e-3", MNIST, MLP + TEN + ["--batch-size", "32", "--lr", "2e-3"]),
    ],
    "defaults": [
        ("mlp", MNIST, MLP),
        ("conv", MNIST, CONV),
        ("vae", MNIST, ["--arch", "vae", "--latent", "30"]),
        ("vae on conv", MNIST, ["--arch", "vae", "--backbone", "conv", "--latent", "30"]),
        ("mlp", FASHION, MLP + ["--limit", "20000"]),
        ("conv", FASHION, CONV + ["--limit", "20000"]),
    ],
    "goals": [
        ("mnist k30 long", MNIST, CONV + ["--epochs", "30"]),
        ("mnist k30 longer", MNIST, CONV + ["--epochs", "60"]),
        ("mnist k30 long wd 0.05", MNIST, CONV + ["--epochs", "30", "--weight-decay", "0.05"]),
        ("mnist k30 long batch 32", MNIST, CONV + ["--epochs", "30", "--batch-size", "32"]),
        ("fashion denoise 0.3", FASHION,
         CONV + ["--mode", "denoise", "--noise-level", "0.3", "--epochs", "10"]),
        ("fashion denoise 0.3 2 blocks", FASHION,
         CONV + ["--mode", "denoise", "--noise-level", "0.3", "--epochs", "10", "--blocks", "2"]),
        ("fashion denoise 0.3 batch 32", FASHION,
         CONV + ["--mode", "denoise", "--noise-level", "0.3", "--epochs", "10",
                 "--batch-size", "32"]),
        ("fashion reconstruct", FASHION, CONV + ["--epochs", "10"]),
        ("demo", MNIST, ["--mode", "denoise", "--noise-level", "0.3", "--arch", "conv",
                         "--latent", "32", "--blocks", "0", "--epochs", "12"]),
    ],
}


def train(name, data, flags, out, epochs):
    slug = re.sub(r"[^a-z0-9]+", "-", f"{os.path.basename(data)} {name}".lower()).strip("-")
    run = os.path.join(out, slug)
    args = [BIN, "train", "--data", data, "--out", run, "--force", "--device", "cpu"] + flags
    if epochs:
        args += ["--epochs", str(epochs)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{name}: ae-tch train failed:\n{done.stderr}")
    return run, json.load(open(os.path.join(ROOT, run, "model.json")))


def same_net(run):
    py = os.path.join(ROOT, ".venv", "bin", "python")
    done = subprocess.run([py, os.path.join(ROOT, "scripts", "sweep", "same_net.py"), run],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{run}: same_net.py failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("set", choices=SETS)
    p.add_argument("--torch", action="store_true", help="add the same net in PyTorch")
    p.add_argument("--only", help="comma-separated row names")
    p.add_argument("--dataset", help="only the rows on this data folder (mnist, fashion-mnist)")
    p.add_argument("--epochs", type=int, help="override every row's epochs")
    p.add_argument("--out", default="runs/sweep")
    args = p.parse_args()
    rows = SETS[args.set]
    if args.only:
        wanted = args.only.split(",")
        rows = [r for r in rows if r[0] in wanted]
    if args.dataset:
        rows = [r for r in rows if os.path.basename(r[1]) == args.dataset]
    head = "| run | data | flags | epochs | train s | sq. err/img | PSNR dB | PCA sq. err/img |"
    rule = "|---|---|---|---|---|---|---|---|"
    if args.torch:
        head += " same net in PyTorch: sq. err/img | PSNR dB | train s |"
        rule += "---|---|---|"
    print(head)
    print(rule, flush=True)
    for name, data, flags in rows:
        run, m = train(name, data, flags, args.out, args.epochs)
        t, o, tr = m["outcome"]["test"], m["outcome"], m["train"]
        shown = " ".join(flags).replace("--latent 30", "").replace("  ", " ").strip()
        line = (f"| {name} | {os.path.basename(data)} | `{shown}` | {o['epochs_run']} | "
                f"{o['train_seconds']:.0f} | {t['sq_err_per_image']:.2f} | {t['psnr_db']:.2f} | "
                f"{t['pca_sq_err_per_image']:.2f} |")
        if args.torch and m["model"]["variational"]:
            line += " - | - | - |"  # the client builds plain autoencoders only
        elif args.torch:
            ref = same_net(run)
            line += (f" {ref['sq_err_per_image']:.2f} | {ref['psnr_db']:.2f} | "
                     f"{ref['train_seconds']:.0f} |")
        print(line, flush=True)


if __name__ == "__main__":
    main()
