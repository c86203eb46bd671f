#!/usr/bin/env python3
"""Writes data/shuttle/shuttle.csv from mlbench's Shuttle.rda (Debian r-cran-mlbench),
read with the PyPI package rdata (no R needed). Called by scripts/setup.sh.

  make_shuttle_csv.py SHUTTLE_RDA OUT_DIR

The CSV is the standard anomaly-detection version of the data (ODDS "shuttle", as used by
ADBench): class "High" is left out, "Rad.Flow" is the normal class and every other class
an anomaly: 49,097 rows, 3,511 of them anomalies. Columns: V1..V9 (the nine numeric
features, integers in the source) and class (the original class name, so
`--normal-classes Rad.Flow` names the normal rows). Rows keep the source's order.
"""
import os
import sys
import warnings

import rdata

src, out_dir = sys.argv[1], sys.argv[2]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII." (it is ASCII)
    frame = rdata.read_rda(src)["Shuttle"]
features = [f"V{i}" for i in range(1, 10)]
if list(frame.columns) != features + ["Class"]:
    sys.exit(f"{src}: unexpected columns {list(frame.columns)}")
kept = frame[frame["Class"].astype(str) != "High"]
anomalies = int((kept["Class"].astype(str) != "Rad.Flow").sum())
if (len(kept), anomalies) != (49097, 3511):
    sys.exit(f"{src}: {len(kept)} rows and {anomalies} anomalies, expected 49097 and 3511")
os.makedirs(out_dir, exist_ok=True)
tmp = os.path.join(out_dir, "shuttle.csv.tmp")
with open(tmp, "w") as f:
    f.write(",".join(features + ["class"]) + "\n")
    for row in kept.itertuples(index=False):
        values = [f"{float(v):g}" for v in row[:9]]
        f.write(",".join(values + [str(row[9])]) + "\n")
os.replace(tmp, os.path.join(out_dir, "shuttle.csv"))
print(f"{out_dir}/shuttle.csv: {len(kept)} rows, {anomalies} anomalies "
      f"({100 * anomalies / len(kept):.2f}%)", file=sys.stderr)
