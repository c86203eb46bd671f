#!/usr/bin/env python3
"""Runs workload W1 with ae-tch and with the PyTorch references, on the same machine and
thread count, and prints a table (samples/s, s/epoch, final train loss, peak RSS, ratio to
the good PyTorch loop, share of the fp32 GEMM roofline). Writes the figures to JSON.
Called by scripts/bench.sh; never run by the tests (times are not asserted anywhere).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

import torch

# W1's model: encoder 784-256-64-16, mirrored decoder. Multiply-adds per sample forward;
# a training step costs about 3x the forward pass (forward + two backward GEMMs).
LAYERS = [(784, 256), (256, 64), (64, 16), (16, 64), (64, 256), (256, 784)]
TRAIN_FLOPS_PER_SAMPLE = 3 * 2 * sum(a * b for a, b in LAYERS)


def gemm_gflops(threads, n=1024, reps=20):
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/ae-tch")
    p.add_argument("--data", default="data/fashion-mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench-out")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=None)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []

    def peak_mib(cmd):
        # GNU time's "Maximum resident set size" would need the time package; wait4 does not.
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = proc.stdout.read()
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{err}")
        return out, usage.ru_maxrss / 1024, time.perf_counter() - start

    run_dir = os.path.join(a.out, "ae-tch-run")
    cmd = [a.bin, "train", "--data", a.data, "--out", run_dir, "--force", "--mode", "denoise",
           "--sigma", "0.3", "--hidden", "256,64", "--latent", "16", "--epochs", str(a.epochs),
           "--batch-size", "128", "--lr", "1e-3", "--val-fraction", "0", "--device", a.device,
           "--threads", str(a.threads)]
    if a.precision:
        cmd += ["--precision", a.precision]
    _, rss, _ = peak_mib(cmd)
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        epochs = list(csv.DictReader(f))
    rate = sum(float(e["samples_per_s"]) for e in epochs) / len(epochs)
    rows.append({"impl": "ae-tch" + (f" ({a.precision})" if a.precision else ""),
                 "samples_per_s": rate, "sec_per_epoch": sum(float(e["seconds"]) for e in epochs) / len(epochs),
                 "final_loss": float(epochs[-1]["train_loss"]), "peak_rss_mib": rss})
    for loader in ["tensor", "dataloader"]:
        ref = [sys.executable, os.path.join(os.path.dirname(__file__), "reference.py"), "--data", a.data,
               "--epochs", str(a.epochs), "--threads", str(a.threads), "--loader", loader]
        if a.device != "cpu":
            ref += ["--device", a.device]
        out, rss, _ = peak_mib(ref)
        r = json.loads(out)
        r.update({"impl": f"pytorch ({loader})", "peak_rss_mib": rss})
        rows.append(r)

    gflops = gemm_gflops(a.threads)
    base = rows[1]["samples_per_s"]
    print(f"W1 on {a.device}, {a.threads} threads, {a.epochs} epochs; fp32 GEMM (1024^3, libtorch): {gflops:.1f} GFLOP/s")
    print(f"{'impl':<22}{'samples/s':>11}{'s/epoch':>10}{'final loss':>12}{'peak RSS MiB':>14}{'vs pytorch':>12}{'roofline':>10}")
    for r in rows:
        r["ratio_vs_pytorch_tensor"] = r["samples_per_s"] / base
        r["roofline_share"] = r["samples_per_s"] * TRAIN_FLOPS_PER_SAMPLE / (gflops * 1e9)
        print(f"{r['impl']:<22}{r['samples_per_s']:>11.0f}{r['sec_per_epoch']:>10.2f}{r['final_loss']:>12.5f}"
              f"{r['peak_rss_mib']:>14.0f}{r['ratio_vs_pytorch_tensor']:>11.2f}x{100 * r['roofline_share']:>9.1f}%")
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump({"workload": "W1", "device": a.device, "threads": a.threads, "epochs": a.epochs,
                   "gemm_gflops": gflops, "train_flops_per_sample": TRAIN_FLOPS_PER_SAMPLE, "rows": rows}, f, indent=2)
    print(f"wrote {os.path.join(a.out, 'bench.json')}")


if __name__ == "__main__":
    main()
