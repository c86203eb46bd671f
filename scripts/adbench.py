"""ADBench's unsupervised protocol on its "Classical" sets, ae-tch beside PyOD's baselines.

For each set and seed: a stratified 70/30 split drawn with the seed (scikit-learn's
train_test_split, as ADBench draws it), written as two .npz files; ae-tch trains on the 70%
(anomalies included, no labels used) with its defaults and scores the 30%; Isolation Forest,
ECOD, HBOS, PCA and KNN (training part of at most 20,000 rows) are fitted on the same 70%,
standard-scaled with statistics of that part, and score the same 30%. Every method runs at
one thread. Baseline results are kept in OUT/baselines/ and reused (they do not change when
ae-tch does), with each baseline's per-row test scores beside them (<set>-seed<k>-scores.npz,
for comparisons made afterwards); ae-tch's in OUT/<label>/.

PyOD's PCA scores a point by its squared distance along every principal component divided
by that component's variance, which is infinite for a component of zero variance (a
rank-deficient training part: cardio, Cardiotocography, fault, ...), and the baseline then
reads 0.5. Here such components (variance below 1e-12 of the largest) are left out of the
score, which is otherwise PyOD's.

    python scripts/adbench.py CLASSICAL_DIR [--seeds 1 2 3] [--sets a,b] [--label NAME]
        [--ae-flags "--trim 0"] [--out runs/adbench] [--bin target/release/ae-tch] [--reuse]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

BASELINES = ["iforest", "ecod", "hbos", "pca", "knn"]
KNN_MAX_ROWS = 20_000


def split(x, y, seed):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)


def metrics(y, scores):
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(y, scores)), float(average_precision_score(y, scores))


def pca_scores(train, test):
    """PyOD's PCA score (all components, each weighted by 1/variance), with components of
    zero variance left out."""
    mean = train.mean(axis=0)
    cov = np.cov(train - mean, rowvar=False)
    var, vec = np.linalg.eigh(np.atleast_2d(cov))
    keep = var > 1e-12 * max(var.max(), 1e-300)
    proj = (test - mean) @ vec[:, keep]
    return (proj**2 / var[keep]).sum(axis=1)


def baseline(name, train, test, seed):
    if name == "pca":
        return pca_scores(train, test)
    if name == "iforest":
        from pyod.models.iforest import IForest

        model = IForest(random_state=seed, n_jobs=1)
    elif name == "ecod":
        from pyod.models.ecod import ECOD

        model = ECOD(n_jobs=1)
    elif name == "hbos":
        from pyod.models.hbos import HBOS

        model = HBOS()
    elif name == "knn":
        from pyod.models.knn import KNN

        model = KNN(n_jobs=1)
    model.fit(train)
    return model.decision_function(test)


def run_baselines(x_train, x_test, y_test, seed, kept):
    """Each baseline's metrics; its per-row test scores go into `kept`."""
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0)
    sd[sd == 0] = 1.0
    train, test = (x_train - mu) / sd, (x_test - mu) / sd
    out = {}
    for name in BASELINES:
        if name == "knn" and len(train) > KNN_MAX_ROWS:
            continue
        start = time.time()
        scores = np.nan_to_num(baseline(name, train, test, seed), nan=0.0, posinf=1e300)
        auc, ap = metrics(y_test, scores)
        out[name] = {"roc_auc": auc, "ap": ap, "seconds": time.time() - start}
        kept[name] = scores
    return out


def run_ae(args, work, seed):
    run = os.path.join(work, "run")
    train = [args.bin, "train", "--data", os.path.join(work, "train.npz"), "--test",
             os.path.join(work, "test.npz"), "--device", "cpu", "--threads", "1", "--seed",
             str(seed), "--out", run, "--force", *args.ae_flags.split()]
    start = time.time()
    done = subprocess.run(train, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ae-tch train failed in {work}:\n{done.stderr}")
    score = [args.bin, "anomaly", "--run", run, "--normal-classes", "0", "--json",
             "--no-baselines", "--threads", "1", "-o", os.path.join(work, "scores.csv")]
    done = subprocess.run(score, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ae-tch anomaly failed in {work}:\n{done.stderr}")
    seconds = time.time() - start
    result = json.loads(done.stdout)
    ours = {"roc_auc": result["roc_auc"], "ap": result["average_precision"], "seconds": seconds}
    json.dump(ours, open(os.path.join(work, "result.json"), "w"))
    return ours


def ranks(values):
    """Average ranks, 1 for the highest value, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("classical")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--sets", default="")
    p.add_argument("--label", default="ae-tch")
    p.add_argument("--ae-flags", default="")
    p.add_argument("--out", default="runs/adbench")
    p.add_argument("--bin", default="target/release/ae-tch")
    p.add_argument("--reuse", action="store_true",
                   help="report ae-tch's results recorded by an earlier run of the same label")
    args = p.parse_args()

    files = sorted(glob.glob(os.path.join(args.classical, "*.npz")),
                   key=lambda f: int(os.path.basename(f).split("_")[0]))
    wanted = [s for s in args.sets.split(",") if s]
    if wanted:
        files = [f for f in files if any(os.path.basename(f)[:-4].split("_", 1)[1] == w
                                         for w in wanted)]
    if not files:
        sys.exit(f"no .npz sets in {args.classical}")
    methods = [args.label] + BASELINES
    table = {}
    for f in files:
        name = os.path.basename(f)[:-4].split("_", 1)[1]
        data = np.load(f, allow_pickle=True)
        x, y = data["X"].astype(np.float64), data["y"].astype(np.int64).ravel()
        per_seed = []
        for seed in args.seeds:
            work = os.path.join(args.out, args.label, f"{name}-seed{seed}")
            os.makedirs(work, exist_ok=True)
            x_train, x_test, y_train, y_test = split(x, y, seed)
            np.savez(os.path.join(work, "train.npz"), x=x_train.astype(np.float32), y=y_train)
            np.savez(os.path.join(work, "test.npz"), x=x_test.astype(np.float32), y=y_test)
            cache = os.path.join(args.out, "baselines", f"{name}-seed{seed}.json")
            if os.path.exists(cache):
                base = json.load(open(cache))
            else:
                kept = {}
                base = run_baselines(x_train, x_test, y_test, seed, kept)
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                json.dump(base, open(cache, "w"))
                np.savez(cache[:-5] + "-scores.npz", y=y_test, **kept)
            recorded = os.path.join(work, "result.json")
            if args.reuse and os.path.exists(recorded):
                ours = json.load(open(recorded))
            else:
                ours = run_ae(args, work, seed)
            per_seed.append({args.label: ours, **base})
        row = {}
        for m in methods:
            got = [s[m] for s in per_seed if m in s]
            if got:
                row[m] = {k: float(np.mean([g[k] for g in got])) for k in got[0]}
        table[name] = row
        line = "  ".join(f"{m} {row[m]['roc_auc']:.3f}" for m in methods if m in row)
        print(f"{name:<18} {line}  ({row[args.label]['seconds']:.1f} s)", file=sys.stderr,
              flush=True)
    report(table, methods, args)


def report(table, methods, args):
    shown = {"iforest": "Isolation Forest", "ecod": "ECOD", "hbos": "HBOS",
             "pca": "PCA (zero-variance components left out)", "knn": "KNN (≤ 20,000 rows)"}
    print(f"seeds {' '.join(map(str, args.seeds))}; ROC-AUC per set (mean over seeds), "
          f"{args.label}'s time for training and scoring at one thread\n")
    print("| set | " + " | ".join(methods) + " | seconds |")
    print("|---" * (len(methods) + 2) + "|")
    rank_sum = {m: 0.0 for m in methods}
    wins = {m: 0 for m in methods[1:]}
    worst = []
    for name, row in table.items():
        cells = [f"{row[m]['roc_auc']:.3f}" if m in row else "–" for m in methods]
        print(f"| {name} | " + " | ".join(cells) + f" | {row[methods[0]]['seconds']:.1f} |")
        present = [m for m in methods if m in row]
        for m, r in zip(present, ranks([row[m]["roc_auc"] for m in present])):
            rank_sum[m] += r
        for m in present[1:]:
            wins[m] += row[methods[0]]["roc_auc"] > row[m]["roc_auc"]
        best = max(row[m]["roc_auc"] for m in present[1:])
        worst.append((row[methods[0]]["roc_auc"] - best, name))
    n = len(table)
    print("\n| method | mean ROC-AUC | mean AP | average rank (ROC-AUC) |")
    print("|---|---|---|---|")
    for m in methods:
        rows = [r[m] for r in table.values() if m in r]
        print(f"| {shown.get(m, m)} | {np.mean([r['roc_auc'] for r in rows]):.3f} | "
              f"{np.mean([r['ap'] for r in rows]):.3f} | {rank_sum[m] / n:.2f} |")
    print(f"\n{methods[0]} against each baseline, sets won of {n}: "
          + ", ".join(f"{shown.get(m, m).split(' (')[0]} {wins[m]}" for m in methods[1:]))
    worst.sort()
    print(f"furthest below the best baseline: "
          + ", ".join(f"{name} {gap:+.3f}" for gap, name in worst[:5]))
    total = sum(r[methods[0]]["seconds"] for r in table.values())
    slowest = max(table.items(), key=lambda kv: kv[1][methods[0]]["seconds"])
    print(f"{methods[0]}: {total:.0f} s in all per seed, slowest {slowest[0]} "
          f"{slowest[1][methods[0]]['seconds']:.1f} s")


if __name__ == "__main__":
    main()
