#!/usr/bin/env python3
"""Runs workloads W1 (MLP), W2 (the default conv net) and W2 at the conv defaults' own batch
and schedule with ae-tch and with the PyTorch references (eager loops, and the loop with
torch.compile'd model and optimiser step), on the same machine and thread count, and prints
a table (samples/s over all epochs and at steady state, s/epoch, final train loss, peak
RSS, the steady-state ratios to the fastest eager PyTorch loop and to the compiled one, the
compiled loop's compile time, share of the fp32 GEMM roofline for W1) and each
implementation's samples/s per epoch, so the steady state shows (every loop slows as
training makes numbers subnormal, unless they are flushed). Prints the CPU's vector
extensions first. Writes the figures to JSON. Called by scripts/bench.sh; never run by the
tests (times are not asserted anywhere).
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time

import torch

# W1's model: encoder 784-256-64-16, mirrored decoder. Multiply-adds per sample forward;
# a training step costs about 3x the forward pass (forward + two backward GEMMs).
LAYERS = [(784, 256), (256, 64), (64, 16), (16, 64), (64, 256), (256, 784)]
TRAIN_FLOPS_PER_SAMPLE = 3 * 2 * sum(a * b for a, b in LAYERS)


def gemm_gflops(threads, device="cpu", precision="fp32", n=1024, reps=20):
    torch.set_num_threads(threads)
    if device != "cpu":
        n, reps = 8192, 50
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def cpu_flags():
    if not os.path.exists("/proc/cpuinfo"):
        return set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device):
    return device != "cpu" or bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def run_measured(cmd, stdout_path=None):
    """Runs cmd and returns the child's peak RSS in MiB (wait4's ru_maxrss: GNU time's
    "Maximum resident set size" without needing the time package). Its stdout goes to
    stdout_path, or is discarded."""
    with open(stdout_path or os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return usage.ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/ae-tch")
    p.add_argument("--data", default="data/fashion-mnist")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench-out")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default=None,
                   help="comma-separated: fp32,bf16 (default: both where the device computes "
                        "bf16 natively: a GPU, or a CPU with AVX512-BF16 or AMX; else fp32)")
    p.add_argument("--repeat", type=int, default=3,
                   help="run every implementation N times (seeds 1..N), interleaved; report the "
                        "median samples/s and the mean final loss (seed-to-seed spread is ~2%%)")
    p.add_argument("--no-dataloader", action="store_true")
    p.add_argument("--workload", default="w1,w2,w2-defaults",
                   help="comma-separated: w1 (the MLP on Fashion-MNIST), w2 (the default conv "
                        "net on data/mnist, reconstruct, batch 128 at a constant 1e-3), "
                        "w2-defaults (the same net with the conv defaults' own batch 64 and "
                        "warm-up + cosine from 3e-3)")
    p.add_argument("--no-compile", action="store_true",
                   help="leave out the torch.compile'd PyTorch loop")
    p.add_argument("--conv-data", default="data/mnist")
    a = p.parse_args()
    for w in a.workload.split(","):
        bench(a, w)


def bench(a, workload):
    conv = workload.startswith("w2")
    own = workload == "w2-defaults"
    data = a.conv_data if conv else a.data
    out = os.path.join(a.out, workload)
    os.makedirs(out, exist_ok=True)
    precisions = (a.precision or ("fp32,bf16" if native_bf16(a.device) else "fp32")).split(",")
    run_dir = os.path.join(out, "ae-tch-run")

    def ae_tch(precision, seed):
        # --init torch --start random: the same model the reference builds (torch.nn's
        # initialisation, not an MLP's start at the mean), so the final losses are
        # comparable; a constant rate, as the reference has.
        model = (["--arch", "conv", "--latent", "30"] if conv else
                 ["--mode", "denoise", "--sigma", "0.3", "--hidden", "256,64", "--latent", "16"])
        model += ["--precision", precision]
        # w2-defaults: the conv defaults' batch and schedule as a user gets them. Squared
        # error everywhere, the references' loss (the image default is cross-entropy).
        rates = ([] if own else ["--batch-size", "128", "--lr", "1e-3", "--lr-schedule", "constant"])
        cmd = [a.bin, "train", "--data", data, "--out", run_dir, "--force", *model, "--loss", "mse",
               "--epochs", str(a.epochs), *rates, "--val-fraction", "0", "--device", a.device,
               "--threads", str(a.threads), "--init", "torch", "--start", "random",
               "--seed", str(seed)]
        rss = run_measured(cmd)
        with open(os.path.join(run_dir, "metrics.csv")) as f:
            epochs = list(csv.DictReader(f))
        return {"samples_per_s": sum(float(e["samples_per_s"]) for e in epochs) / len(epochs),
                "sec_per_epoch": sum(float(e["seconds"]) for e in epochs) / len(epochs),
                "final_loss": float(epochs[-1]["train_loss"]), "peak_rss_mib": rss,
                "epoch_samples_per_s": [float(e["samples_per_s"]) for e in epochs],
                "epoch_losses": [float(e["train_loss"]) for e in epochs]}

    def reference(loader, precision, seed, flush=False, compiled=False):
        out_file = os.path.join(out, "reference.json")
        cmd = [sys.executable, os.path.join(os.path.dirname(__file__), "reference.py"),
               "--data", data, "--epochs", str(a.epochs), "--threads", str(a.threads),
               "--loader", loader, "--device", a.device, "--precision", precision,
               "--seed", str(seed)] + (["--flush-denormal"] if flush else [])
        cmd += ["--compile"] if compiled else []
        if conv:
            cmd += ["--model-json", os.path.join(run_dir, "model.json"), "--reconstruct"]
            cmd += ["--conv-defaults"] if own else []
        rss = run_measured(cmd, out_file)
        with open(out_file) as f:
            r = json.load(f)
        r["peak_rss_mib"] = rss
        return r

    jobs = []
    for prec in precisions:
        jobs.append((f"ae-tch ({prec})", lambda s, prec=prec: ae_tch(prec, s)))
        # bf16 on a CPU: the flush-denormal loop only (the plain one only differs in fp32).
        if prec == "fp32" or a.device != "cpu":
            jobs.append((f"pytorch tensor ({prec})", lambda s, prec=prec: reference("tensor", prec, s)))
        if a.device == "cpu":
            jobs.append((f"pytorch tensor+ftz ({prec})",
                         lambda s, prec=prec: reference("tensor", prec, s, flush=True)))
        if prec == "fp32" and not a.no_dataloader and not conv:
            jobs.append(("pytorch dataloader (fp32)", lambda s: reference("dataloader", "fp32", s)))
        if not a.no_compile:
            # The compiled loop with the eager loop's best setting (flush-denormal on a CPU).
            jobs.append((f"pytorch compiled ({prec})", lambda s, prec=prec: reference(
                "tensor", prec, s, flush=a.device == "cpu", compiled=True)))
    runs = {name: [] for name, _ in jobs}
    for seed in range(1, a.repeat + 1):
        for name, job in jobs:
            runs[name].append(job(seed))
    rows = []
    for name, _ in jobs:
        rs = sorted(runs[name], key=lambda r: r["samples_per_s"])
        r = dict(rs[len(rs) // 2])
        r["impl"] = name
        r["samples_per_s_all"] = [x["samples_per_s"] for x in runs[name]]
        r["final_loss_all"] = [x["final_loss"] for x in runs[name]]
        r["final_loss"] = sum(r["final_loss_all"]) / len(rs)
        # Per epoch, the median over seeds.
        per_epoch = list(zip(*(x["epoch_samples_per_s"] for x in runs[name])))
        r["epoch_samples_per_s"] = [sorted(e)[len(e) // 2] for e in per_epoch]
        r["peak_rss_mib"] = max(x["peak_rss_mib"] for x in runs[name])
        # Steady state: the epochs after the first (which holds a compiled loop's compiling
        # and every loop's warm-up), the median over epochs of the per-epoch medians.
        later = sorted(r["epoch_samples_per_s"][1:] or r["epoch_samples_per_s"])
        r["steady_samples_per_s"] = later[len(later) // 2]
        r["compile_seconds"] = sorted(x.get("compile_seconds", 0.0) for x in runs[name])[len(rs) // 2]
        rows.append(r)

    flags = cpu_flags()
    vector = [f for f in ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                          "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16"] if f in flags]
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), "unknown") if flags else "unknown"
    print(f"CPU: {model}; vector extensions: {' '.join(vector) or 'unknown'}")
    what = ("W2 with the conv defaults' batch 64 and warm-up + cosine" if own else
            "W2 (the default conv net, data/mnist, reconstruct)" if conv else
            "W1 (MLP 784-256-64-16, Fashion-MNIST, denoise)")
    print(f"\n{what} on {a.device}, {a.threads} threads, {a.epochs} epochs; seeds 1..{a.repeat}: median "
          f"samples/s, mean final loss, largest peak RSS; ratios against the fastest eager PyTorch "
          f"loop and the compiled one")
    print(f"{'impl':<28}{'samples/s':>11}{'steady':>9}{'s/epoch':>9}{'final loss':>12}{'loss vs pt':>11}"
          f"{'RSS MiB':>9}{'vs eager':>10}{'vs compiled':>13}{'compile s':>11}{'roofline':>10}")
    gemm = {prec: gemm_gflops(a.threads, a.device, prec) for prec in precisions}
    for r in rows:
        prec = r["impl"].rsplit("(", 1)[1].rstrip(")")
        same = [x for x in rows if x["impl"].endswith(f"({prec})")]
        # The fastest eager PyTorch loop at steady state: usually the flush-denormal one,
        # but not on every CPU (on an AMD EPYC the plain tensor loop was faster).
        eager = max((x for x in same if x["impl"].startswith("pytorch") and "compiled" not in x["impl"]),
                    key=lambda x: x["steady_samples_per_s"])
        compiled = next((x for x in same if x["impl"].startswith("pytorch compiled")), None)
        r["ratio_vs_best_pytorch"] = r["steady_samples_per_s"] / eager["steady_samples_per_s"]
        r["ratio_vs_compiled"] = (r["steady_samples_per_s"] / compiled["steady_samples_per_s"]
                                  if compiled else float("nan"))
        r["loss_vs_best_pytorch"] = r["final_loss"] / eager["final_loss"] - 1
        r["gemm_gflops"] = gemm[prec]
        # The roofline is W1's (its FLOPs are GEMMs); W2's convolutions are not counted.
        r["roofline_share"] = (float("nan") if conv else
                               r["steady_samples_per_s"] * TRAIN_FLOPS_PER_SAMPLE / (gemm[prec] * 1e9))
        print(f"{r['impl']:<28}{r['samples_per_s']:>11.0f}{r['steady_samples_per_s']:>9.0f}"
              f"{r['sec_per_epoch']:>9.2f}{r['final_loss']:>12.5f}{100 * r['loss_vs_best_pytorch']:>+10.1f}%"
              f"{r['peak_rss_mib']:>9.0f}{r['ratio_vs_best_pytorch']:>9.2f}x{r['ratio_vs_compiled']:>12.2f}x"
              f"{r['compile_seconds']:>11.1f}"
              + ("" if math.isnan(r["roofline_share"]) else f"{100 * r['roofline_share']:>9.1f}%"))
    print(f"(steady: samples/s over epochs 2-{a.epochs}; the ratios compare steady states; "
          f"GEMM: {', '.join(f'{p} {g:.0f} GFLOP/s' for p, g in gemm.items())})")
    print(f"\nsamples/s per epoch (median over seeds)")
    print(f"{'impl':<28}" + "".join(f"{'epoch ' + str(e + 1):>11}" for e in range(a.epochs)))
    for r in rows:
        print(f"{r['impl']:<28}" + "".join(f"{v:>11.0f}" for v in r["epoch_samples_per_s"]))
    with open(os.path.join(out, "bench.json"), "w") as f:
        json.dump({"workload": workload.upper(), "device": a.device, "threads": a.threads, "epochs": a.epochs,
                   "repeat": a.repeat, "train_flops_per_sample": TRAIN_FLOPS_PER_SAMPLE,
                   "rows": rows}, f, indent=2)
    print(f"wrote {os.path.join(out, 'bench.json')}")


if __name__ == "__main__":
    main()
