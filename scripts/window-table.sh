#!/usr/bin/env bash
# Issue 37 §2: `--window auto` against the window the guide recommends, seed by seed, on
# data/series: the UCR heart rate (InternalBleeding16, its first 1,200 steps to train on;
# auto was developed on it) and the synthetic ECG (ecg-diff-count-3, trained on its
# anomaly-free file and scored on its test file; only measured). Prints, per setting, the
# seeds whose highest-scoring step is within 100 steps of a labelled anomaly (the UCR
# rule) and the point-wise ROC-AUC and average precision (min–max over the seeds).
# Runs land in runs/window-table/. About 2 minutes on 2 cores after the build.
#   scripts/window-table.sh [SEEDS...]      (default: 1 2 3 4 5)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4 5)
bin=target/release/ae-tch
out=runs/window-table
mkdir -p "$out"
results=$out/results.jsonl
: > "$results"
heart=(--data data/series/135_UCR_Anomaly_InternalBleeding16_TEST.csv --columns value
  --label-column is_anomaly --test-fraction 0.84 --epochs 40)
ecg=(--data data/series/ecg-diff-count-3_TRAIN_NA.csv
  --test data/series/ecg-diff-count-3_TEST.csv --columns value-0 --label-column is_anomaly
  --epochs 30)
# set|setting|flags
rows=(
  "heart rate|--window auto|"
  "heart rate|--window 64 --hop 1|--window 64 --hop 1"
  "ECG|--window auto|"
  "ECG|--window 64 --hop 2|--window 64 --hop 2"
)
for row in "${rows[@]}"; do
  IFS='|' read -r set setting flags <<< "$row"
  read -r -a extra <<< "$flags"
  if [ "$set" = "ECG" ]; then data=("${ecg[@]}"); else data=("${heart[@]}"); fi
  for seed in "${seeds[@]}"; do
    dir="$out/$(echo "$set $setting" | tr -c 'a-zA-Z0-9\n' '-')-seed$seed"
    "$bin" train "${data[@]}" --seed "$seed" --threads 1 --no-tensorboard --out "$dir" \
      --force ${extra[@]+"${extra[@]}"} > "$dir.log" 2>&1 \
      || { echo "train failed: $set $setting seed $seed (see $dir.log)" >&2; exit 1; }
    "$bin" anomaly --run "$dir" --normal-classes 0 --json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin); m = json.load(open(sys.argv[3] + "/model.json"))
s = m["model"]["input"]["series"]
print(json.dumps(dict(set=sys.argv[1], setting=sys.argv[2], window=s["window"], hop=s["hop"],
                      **j["points"])))' "$set" "$setting" "$dir" >> "$results"
  done
done

python3 - "$results" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("| data | setting | window / hop | UCR rule hits | point-wise ROC-AUC | average precision |")
print("|---|---|---|---|---|---|")
keys = []
for r in runs:
    if (r["set"], r["setting"]) not in keys:
        keys.append((r["set"], r["setting"]))
for key in keys:
    rs = [r for r in runs if (r["set"], r["setting"]) == key]
    span = lambda k: f"{min(r[k] for r in rs):.3f}–{max(r[k] for r in rs):.3f}"
    cut = sorted({f'{r["window"]} / {r["hop"]}' for r in rs})
    hits = sum(bool(r.get("ucr_hit")) for r in rs)
    print(f"| {key[0]} | `{key[1]}` | {', '.join(cut)} | {hits} of {len(rs)} | "
          f"{span('roc_auc')} | {span('average_precision')} |")
PY
