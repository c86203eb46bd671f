//! Numeric vectors end to end on data/shuttle (setup.sh's CSV of the ODDS "shuttle" set),
//! checked against NumPy, and CSV/.npy files of every broken kind.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// setup.sh's CSV: V1..V9 and a `class` column, class "High" dropped.
fn shuttle() -> PathBuf {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/shuttle/shuttle.csv");
    assert!(file.is_file(), "{} is missing: run scripts/setup.sh", file.display());
    file
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn vector_train(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["train", "--threads", "1", "--device", "cpu"].iter().map(|s| s.to_string()).collect();
    args.extend(["--data", s(data), "--out", s(out)].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `code` in the project's Python (NumPy) in `cwd`; its stdout, trimmed.
fn numpy(cwd: &Path, code: &str) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = Command::new(python).current_dir(cwd).args(["-c", code]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn shuttle_csv_has_the_odds_counts() {
    let text = std::fs::read_to_string(shuttle()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("V1,V2,V3,V4,V5,V6,V7,V8,V9,class"));
    let classes: Vec<&str> = lines.map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(classes.len(), 49_097);
    assert_eq!(classes.iter().filter(|&&c| c != "Rad.Flow").count(), 3_511);
    assert!(!classes.contains(&"High"));

    // `data info` on the table: its rows, labels and columns, as NumPy computes them.
    let (d, file) = (tempdir(), shuttle());
    let args = ["data", "info", s(&file), "--label-column", "class", "--json"];
    let info: serde_json::Value = serde_json::from_str(&ae(d.path(), &args).ok().stdout).unwrap();
    assert_eq!(
        (info["rows"].as_u64(), info["labels"]["Rad.Flow"].as_u64()),
        (Some(49_097), Some(45_586))
    );
    let v6 = &info["columns"][5];
    let code = format!(
        "import numpy as np; x = np.loadtxt({:?}, delimiter=',', skiprows=1, usecols=5); \
         print(x.mean(), x.std(), x.min(), x.max())",
        s(&shuttle())
    );
    let numpy: Vec<f64> = numpy(d.path(), &code).split(' ').map(|v| v.parse().unwrap()).collect();
    for (key, want) in ["mean", "std", "min", "max"].iter().zip(&numpy) {
        let got = v6[key].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "V6 {key}: {got} against NumPy's {want}"
        );
    }
    // Without the label column named, `class` is found by its name, as train finds it.
    let found = ae(d.path(), &["data", "info", s(&file), "--json"]).ok();
    assert!(found.stderr.contains("column 'class' of"), "{}", found.stderr);
    let again: serde_json::Value = serde_json::from_str(&found.stdout).unwrap();
    assert_eq!(again["labels"], info["labels"]);
}

/// Unsupervised, as ADBench measures it: train on the training split anomalies and all,
/// then score the held-out 30%. Every figure ae-tch prints is recomputed with NumPy from
/// the CSV itself and the rows ae-tch says it used.
#[test]
fn shuttle_end_to_end_agrees_with_numpy() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("run");
    let train = ae(
        d,
        &vector_train(
            &shuttle(),
            &run,
            &["--label-column", "class", "--epochs", "4", "--tail-score", "--ensemble", "1"],
        ),
    )
    .ok();
    // A table is min–max scaled unless --scale says otherwise.
    assert!(train.stderr.contains("9 features, minmax scaling"), "{}", train.stderr);
    // Without --classes the rows may hold anomalies: the trimmed loss is the default.
    assert!(train.stderr.contains("--trim 0.2"), "{}", train.stderr);
    let manifest = read_json(&run.join("model.json"));
    let input = &manifest["model"]["input"];
    assert_eq!(input["kind"], "vector");
    assert_eq!(input["classes"].as_array().unwrap().len(), 6);
    // Defaults for 9 features: a D-64-32-k net with k = 4.
    assert_eq!(manifest["model"]["layers"]["hidden"], serde_json::json!([64, 32]));
    assert_eq!(manifest["model"]["latent"], 4);

    let r = s(&run);
    let eval = ae(d, &["eval", "--run", r, "--json"]).ok();
    let eval: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
    assert!(eval.get("psnr_db").is_none() && eval.get("ssim").is_none(), "{eval}");
    let table = ae(d, &["eval", "--run", r]).ok().stdout;
    assert!(table.contains("mse per feature") && !table.contains("psnr"), "{table}");

    ae(d, &["encode", "--run", r, "--decode", "-o", "xhat.csv"]).ok();
    ae(d, &["encode", "--run", r, "-o", "z.csv"]).ok();
    let header = std::fs::read_to_string(d.join("xhat.csv")).unwrap();
    assert!(header.starts_with("row,label,V1,V2,"), "{}", &header[..40]);
    let z = std::fs::read_to_string(d.join("z.csv")).unwrap();
    assert!(z.starts_with("row,label,z_1,z_2,z_3,z_4\n"), "{}", &z[..40]);

    // NumPy: the test rows are 30% of every class; the scaling is the minimum and range of
    // exactly the other rows; eval's MSE is the scaled squared error of x̂.
    let code = format!(
        r#"
import csv, json, numpy as np
rows = list(csv.reader(open({data:?})))[1:]
x = np.array([[float(v) for v in r[:9]] for r in rows])
y = np.array([r[9] for r in rows])
out = list(csv.reader(open("xhat.csv")))[1:]
ids = np.array([int(r[0]) for r in out])
xhat = np.array([[float(v) for v in r[2:]] for r in out])
assert all(r[1] == y[i] for r, i in zip(out, ids)), "labels joined back"
for c in set(y):
    n, t = (y == c).sum(), (y[ids] == c).sum()
    assert abs(t - 0.3 * n) <= 1, (c, n, t)
train = np.delete(x, ids, axis=0)
sc = json.load(open({manifest:?}))["model"]["input"]["scaling"]
mean, sd = train.min(0), train.max(0) - train.min(0)
assert np.allclose(sc["offset"], mean, rtol=1e-9) and np.allclose(sc["scale"], sd, rtol=1e-9)
err = ((x[ids] - mean) / sd - (xhat - mean) / sd) ** 2
print(len(ids), err.mean(), err.sum(1).mean())
"#,
        data = s(&shuttle()),
        manifest = s(&run.join("model.json")),
    );
    let got: Vec<f64> = numpy(d, &code).split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!(got[0], eval["images"].as_f64().unwrap());
    let (mse, per_row) =
        (eval["mse"].as_f64().unwrap(), eval["sq_err_per_image"].as_f64().unwrap());
    assert!((got[1] - mse).abs() < 1e-5 * mse, "NumPy {} against ae-tch {mse}", got[1]);
    assert!((got[2] - per_row).abs() < 1e-5 * per_row);

    // Anomalies: everything but Rad.Flow. The trimmed loss measured 0.998 after 20 epochs
    // (3 seeds; 0.78 with the plain mean); Isolation Forest 0.997 (ADBench: 0.9956).
    let args =
        ["anomaly", "--run", r, "--normal-classes", "Rad.Flow", "--json", "-o", "scores.csv"];
    let mut with_explain = args.to_vec();
    with_explain.extend(["--contamination", "0.07", "--explain", "5"]);
    let a: serde_json::Value =
        serde_json::from_str(ae(d, &with_explain).ok().stdout.trim()).unwrap();
    assert_eq!(a["normal_classes"], serde_json::json!(["Rad.Flow"]));
    assert!(a["roc_auc"].as_f64().unwrap() > 0.98, "{a}");
    let forest = a["baselines"]["isolation_forest"]["roc_auc"].as_f64().unwrap();
    assert!(forest > 0.99, "{a}");
    assert!(a["baselines"]["pca"]["average_precision"].as_f64().is_some(), "{a}");
    // --contamination 0.07: the p93 of the training rows' scores, stored in the run.
    assert_eq!((a["rule"].as_str(), a["parameter"].as_f64()), (Some("contamination"), Some(0.07)));
    let stored = read_json(&run.join("anomaly.json"));
    assert_eq!(stored["threshold"], a["threshold"]);
    assert_eq!(stored["reference_rows"], 34_368);
    let scores = std::fs::read_to_string(d.join("scores.csv")).unwrap();
    assert!(scores.starts_with("row,label,score,is_anomaly,probability\n"));
    assert_eq!(scores.lines().count(), got[0] as usize + 1);
    // ROC-AUC and average precision recomputed by NumPy from the scores (scikit-learn's
    // definitions: Mann–Whitney U; Σ ΔRecall·Precision over distinct thresholds), and the
    // explanation's values against the file itself.
    let code = format!(
        r#"
import csv, numpy as np
rows = list(csv.reader(open({data:?})))[1:]
x = np.array([[float(v) for v in r[:9]] for r in rows])
out = list(csv.reader(open("scores.csv")))[1:]
s = np.array([float(r[2]) for r in out]); y = np.array([r[1] != "Rad.Flow" for r in out])
order = np.argsort(s, kind="stable"); ranks = np.empty(len(s))
u, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
ranks = (np.cumsum(cnt) - (cnt - 1) / 2)[inv]
auc = (ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())
desc = -u[::-1]; tp = np.cumsum(np.bincount(inv, weights=y)[::-1]); seen = np.cumsum(cnt[::-1])
recall = tp / y.sum(); prec = tp / seen
ap = np.sum(np.diff(np.r_[0, recall]) * prec)
ex = list(csv.reader(open("run/explain.csv")))
assert ex[0] == ["rank", "row", "label", "score", "feature", "value", "reconstruction", "share",
                 "as_extreme"]
assert len(ex) == 1 + 5 * 9, len(ex)
top = sorted(s)[::-1][:5]
for r in ex[1:]:
    assert abs(float(r[3]) - top[int(r[0]) - 1]) < 1e-9 * top[0]
    assert float(r[5]) == x[int(r[1]), int(r[4][1:]) - 1], r
shares = [sum(float(r[7]) for r in ex[1:] if r[0] == str(k)) for k in range(1, 6)]
assert all(abs(t - 1) < 1e-5 for t in shares), shares
import json, math
train = np.array(json.load(open("run/reference-scores.json"))["training"])
mu, sigma = train.mean(), train.std()
want = [min(max(math.erf((v - mu) / (sigma * math.sqrt(2))), 0), 1) for v in s]
got = [float(r[4]) for r in out]
assert max(abs(a - b) for a, b in zip(want, got)) < 1e-6, "PyOD's unify scaling"
# The score: the weighted squared error of the decoded rows plus ECOD's tail score against
# the kept training values, each on its recorded scale.
from safetensors.numpy import load_file
det = load_file("run/detector.safetensors")
sc = json.load(open("run/model.json"))["model"]["input"]["scaling"]
off, scale = np.float32(sc["offset"]), np.float32(sc["scale"])
unit = lambda v: ((np.float32(v) - off) / scale).astype(np.float64)
ids = [int(r[0]) for r in out]
hat = {{int(r[0]): [float(v) for v in r[2:]] for r in list(csv.reader(open("xhat.csv")))[1:]}}
u, uh = unit(x[ids]), unit(np.array([hat[i] for i in ids]))
ref, w, left, k = det["reference"], det["weights"][0], det["left"], det["scale"]
assert det["weights"].shape == (1, 9) and k.shape == (4,), "one model: its scale, the tails'"
m = ref.shape[1]
assert (np.diff(ref, axis=1) >= 0).all() and 0 < m <= len(x) - len(ids)
kept = unit(np.delete(x, ids, axis=0))
assert all(np.isin(ref[j], kept[:, j]).all() for j in range(9)), "kept rows are training rows"
p = lambda c: -np.log(np.clip(c / (m + 1), 1 / (m + 1), 1))
low = np.stack([p(np.searchsorted(ref[j], u[:, j], "right")) for j in range(9)], 1)
high = np.stack([p(m - np.searchsorted(ref[j], u[:, j], "left")) for j in range(9)], 1)
side = np.where(left > 0, low, high)
tail = np.maximum(np.maximum(low.sum(1), high.sum(1)), side.sum(1))
err = ((uh - u) ** 2 * w).mean(1)
want = (np.log(err + 1e-12) - k[0]) / k[1] + (np.log(tail + 1e-12) - k[2]) / k[3]
assert np.abs(want - s).max() < 1e-3, np.abs(want - s).max()
# --explain: each feature's share of the weighted error, and the share of kept training rows
# at least as far out on the value's side.
pos = {{i: n for n, i in enumerate(ids)}}
for r in ex[1:]:
    n, j = pos[int(r[1])], int(r[4][1:]) - 1
    e = (uh[n] - u[n]) ** 2 * w
    assert abs(float(r[7]) - e[j] / e.sum()) < 1e-3, (r, e / e.sum())
    far = max(p(np.searchsorted(ref[j], u[n, j], "right")),
              p(m - np.searchsorted(ref[j], u[n, j], "left")))
    assert abs(float(r[8]) - np.exp(-far)) < 1e-6, (r, np.exp(-far))
print(auc, ap)
"#,
        data = s(&shuttle()),
    );
    let reference: Vec<f64> = numpy(d, &code).split(' ').map(|v| v.parse().unwrap()).collect();
    assert!((reference[0] - a["roc_auc"].as_f64().unwrap()).abs() < 1e-9, "{reference:?} {a}");
    let ap = a["average_precision"].as_f64().unwrap();
    assert!((reference[1] - ap).abs() < 1e-9, "{reference:?} {a}");
    ae(d, &args).ok();
    // A run folder that cannot be written still scores; only the record is skipped.
    let out = crate::resume::with_fault(d, &args.map(String::from), "enospc:anomaly.json");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("the threshold was not stored"), "{}", out.stderr);
    ae(d, &["anomaly", "--run", r, "--normal-classes", "Rad.Flo"])
        .fails_with(&["unknown class 'Rad.Flo'", "'Rad.Flow'"]);

    // denoise: a CSV in, the same columns out in the file's units, the label column kept;
    // the rows are the model's reconstructions, as encode --decode writes them.
    let text = std::fs::read_to_string(shuttle()).unwrap();
    let head: String = text.lines().take(21).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("few.csv"), head).unwrap();
    ae(d, &["denoise", "--run", r, "few.csv", "-o", "dn"]).ok();
    let out = std::fs::read_to_string(d.join("dn/few-denoised.csv")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!((lines[0], lines.len()), ("V1,V2,V3,V4,V5,V6,V7,V8,V9,class", 21));
    for (line, original) in lines.iter().zip(text.lines()).skip(1) {
        assert_eq!(line.rsplit(',').next(), original.rsplit(',').next(), "the label is kept");
    }
    let decoded = std::fs::read_to_string(d.join("xhat.csv")).unwrap();
    let mut matched = 0;
    for row in decoded.lines().skip(1) {
        let (i, rest) = row.split_once(',').unwrap();
        let (label, values) = rest.split_once(',').unwrap();
        if let Some(line) = lines.get(i.parse::<usize>().unwrap() + 1) {
            assert_eq!(*line, format!("{values},{label}"));
            matched += 1;
        }
    }
    assert!(matched > 0, "some of the first 20 rows are test rows");
    ae(d, &["denoise", "--run", r, "few.csv", "-o", "dn", "--invert", "yes"])
        .fails_with(&["--invert", "vectors"]);

    // The latent scatter names the classes in its legend.
    ae(d, &["plot-latent", "--run", r, "-o", "z.svg"]).ok();
    let svg = std::fs::read_to_string(d.join("z.svg")).unwrap();
    assert!(svg.contains("Rad.Flow") && svg.contains("Bypass"));

    // Image-only commands say why they cannot.
    ae(d, &["grid", "--run", r, "-o", "g.png"]).fails_with(&["works on images", "9 features"]);
    assert!(!d.join("g.png").exists());
}

/// Semi-supervised: train on the normal class only (no trimming: the rows are named
/// normal); `anomaly` takes the run's classes as the normal ones. The weights go to
/// PyTorch and back with the same outputs.
#[test]
fn training_on_named_classes_makes_them_the_normal_ones() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("normal");
    let args = ["--label-column", "class", "--classes", "Rad.Flow", "--epochs", "3"];
    ae(d, &vector_train(&shuttle(), &run, &args)).ok();
    let manifest = read_json(&run.join("model.json"));
    assert_eq!(manifest["train"]["classes"].as_array().unwrap().len(), 1);
    assert!(manifest["train"].get("trim").is_none(), "{}", manifest["train"]);
    let a = ae(d, &["anomaly", "--run", s(&run), "--json", "--threshold-sigma", "3"]).ok();
    let a: serde_json::Value = serde_json::from_str(a.stdout.trim()).unwrap();
    assert_eq!(a["normal_classes"], serde_json::json!(["Rad.Flow"]));
    // Measured 0.9996 at 20 epochs (2 seeds); chance is 0.5.
    assert!(a["roc_auc"].as_f64().unwrap() > 0.99, "{a}");
    assert_eq!(a["rule"], "sigma");
    assert!(a["precision"].as_f64().unwrap() > 0.5, "{a}");

    // New rows without the label column (issue 35): scored, flagged, plotted, encoded and
    // denoised; their scores are those of the same rows with labels, and no detection
    // figures are claimed. Normal classes asked for by name still need labels.
    let text = std::fs::read_to_string(shuttle()).unwrap();
    let head: Vec<&str> = text.lines().take(201).collect();
    let unlabelled: String =
        head.iter().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect();
    assert!(unlabelled.starts_with("V1,V2,V3,V4,V5,V6,V7,V8,V9\n"), "{}", &unlabelled[..40]);
    std::fs::write(d.join("new.csv"), &unlabelled).unwrap();
    std::fs::write(d.join("labelled.csv"), head.join("\n") + "\n").unwrap();
    let scored = |file: &str| {
        let args = ["anomaly", "--run", s(&run), "--data", file, "-o", "sc.csv", "--json"];
        let out = ae(d, &[&args[..], &["--plot", "sc.png"]].concat()).ok();
        let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        (summary, std::fs::read_to_string(d.join("sc.csv")).unwrap())
    };
    let ((new, new_rows), (labelled, labelled_rows)) = (scored("new.csv"), scored("labelled.csv"));
    // The labelled file's rows carry their label beside the row number; nothing else differs.
    let unlabel = |row: &str| {
        let f: Vec<&str> = row.split(',').collect();
        [&f[..1], &f[2..]].concat().join(",")
    };
    assert_eq!(labelled_rows.lines().next(), Some("row,label,score,is_anomaly,probability"));
    assert_eq!(new_rows.lines().next(), Some("row,score,is_anomaly,probability"));
    let labelled_rows: Vec<String> = labelled_rows.lines().skip(1).map(unlabel).collect();
    let new_rows: Vec<&str> = new_rows.lines().skip(1).collect();
    assert!(new_rows == labelled_rows && new_rows.len() == 200, "{new_rows:?}");
    assert_eq!(new["flagged"], labelled["flagged"]);
    assert!(new.get("roc_auc").is_none() && labelled["roc_auc"].is_number(), "{new}");
    assert_eq!(image::image_dimensions(d.join("sc.png")).unwrap(), (800, 500));
    ae(d, &["encode", "--run", s(&run), "--data", "new.csv", "-o", "z.csv"]).ok();
    assert_eq!(std::fs::read_to_string(d.join("z.csv")).unwrap().lines().count(), 201);
    ae(d, &["denoise", "--run", s(&run), "new.csv", "-o", "dn"]).ok();
    assert!(d.join("dn/new-denoised.csv").is_file());
    let args = ["anomaly", "--run", s(&run), "--data", "new.csv", "--normal-classes", "Rad.Flow"];
    ae(d, &args).fails_with(&["--normal-classes needs labels, and the data has none"]);

    // The threshold comes from the scores training recorded, so a run whose training file
    // is gone still scores new files; without the record (a run made before it), the rows
    // are read and scored again, to the same threshold.
    assert_eq!(new["threshold_recorded"], true);
    let gone = d.join("gone");
    copy_dir(&run, &gone);
    let mut manifest = read_json(&gone.join("model.json"));
    manifest["data"]["path"] = d.join("moved-away.csv").to_str().unwrap().into();
    std::fs::write(gone.join("model.json"), manifest.to_string()).unwrap();
    let args = ["anomaly", "--run", s(&gone), "--data", "new.csv"];
    let out = ae(d, &args).ok().stdout;
    assert!(out.contains("(p99 of the validation rows' scores, scored when the run was trained)"));
    std::fs::remove_file(gone.join("reference-scores.json")).unwrap();
    ae(d, &args).fails_with(&["the threshold needs the run's training data", "moved-away.csv"]);
    // A damaged detector is named, not read as something else.
    std::fs::write(gone.join("detector.safetensors"), b"not tensors").unwrap();
    ae(d, &args).fails_with(&["detector.safetensors is not an anomaly detector ae-tch wrote"]);
    std::fs::remove_file(run.join("reference-scores.json")).unwrap();
    let args = ["anomaly", "--run", s(&run), "--data", "new.csv", "--json"];
    let rescored: serde_json::Value =
        serde_json::from_str(ae(d, &args).ok().stdout.trim()).unwrap();
    assert_eq!(rescored["threshold_recorded"], false);
    let (a, b) = (rescored["threshold"].as_f64().unwrap(), new["threshold"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-9 * b, "rescored {a}, recorded {b}");

    // Export → PyTorch (linear output layer) on the scaled test rows; PyTorch's own
    // weights → import → ae-tch's reconstructions are PyTorch's.
    let r = s(&run);
    ae(d, &["export", "--run", r, "-o", "w.safetensors"]).ok();
    ae(d, &["encode", "--run", r, "--decode", "-o", "xhat.npy"]).ok();
    let scaled = |name: &str| {
        format!(
            r#"
import csv, json, numpy as np
sc = json.load(open({manifest:?}))["model"]["input"]["scaling"]
off, scale = np.array(sc["offset"]), np.array(sc["scale"])
x = np.array([[float(v) for v in r[:9]] for r in list(csv.reader(open({data:?})))[1:]])
xh = np.load("{name}.npy"); ids = xh[:, 0].astype(int)
np.save("in.npy", ((x[ids] - off) / scale).astype(np.float32))
np.save("{name}-scaled.npy", (xh[:, 2:] - off) / scale)
"#,
            manifest = s(&run.join("model.json")),
            data = s(&shuttle()),
        )
    };
    numpy(d, &scaled("xhat"));
    let manifest_path = run.join("model.json");
    let json = s(&manifest_path);
    let f: Vec<PathBuf> =
        ["w.safetensors", "xhat-scaled.npy", "in.npy", "t.safetensors", "t.npy", "mine-scaled.npy"]
            .iter()
            .map(|n| d.join(n))
            .collect();
    let diff = crate::ecosystem::client(&["check", json, s(&f[0]), s(&f[1]), s(&f[2])]);
    assert!(diff < 1e-4, "PyTorch differs from ae-tch by {diff}");
    crate::ecosystem::client(&["make", json, s(&f[3]), s(&f[4]), "3", s(&f[2])]);
    ae(d, &["import", "--config", json, "--from", "t.safetensors", "--out", "imported"]).ok();
    ae(d, &["encode", "--run", "imported", "--decode", "-o", "mine.npy"]).ok();
    numpy(d, &scaled("mine"));
    let diff = crate::ecosystem::client(&["diff", s(&f[5]), s(&f[4])]);
    assert!(diff < 1e-4, "ae-tch differs from PyTorch by {diff}");
    ae(
        d,
        &vector_train(&shuttle(), &d.join("x"), &["--label-column", "class", "--classes", "High"]),
    )
    .fails_with(&["--classes: unknown class 'High'"]);
}

/// A .npy of float64 rows with integer labels; a constant column is kept, not divided by
/// zero; `eval --data` reads another file with the run's columns and scaling.
#[test]
fn npy_with_labels_and_a_constant_column() {
    let dir = tempdir();
    let d = dir.path();
    numpy(
        d,
        r#"
import numpy as np
r = np.random.default_rng(0)
z = r.normal(size=(600, 2))
x = np.c_[z @ [[1, 2, 0.5], [0.3, -1, 2]], np.full(600, 7.0)]
y = (z[:, 0] > 1.5).astype(np.int64)
np.save("x.npy", x); np.save("y.npy", y); np.save("other.npy", x[:50])
np.save("x_tr.npy", x[:420]); np.save("y_tr.npy", y[:420])
np.save("x_te.npy", x[420:]); np.save("y_te.npy", y[420:])
"#,
    );
    // A separate .npy test file takes its labels from --test-labels.
    let split = ["--labels", "y_tr.npy", "--test", "x_te.npy", "--epochs", "2"];
    let out = d.join("split");
    ae(d, &vector_train(&d.join("x_tr.npy"), &out, &split))
        .fails_with(&["pass --test-labels FILE.npy"]);
    ae(
        d,
        &vector_train(
            &d.join("x_tr.npy"),
            &out,
            &[&split[..], &["--test-labels", "y_te.npy"]].concat(),
        ),
    )
    .ok();
    let a = ae(d, &["anomaly", "--run", s(&out), "--normal-classes", "0", "--json"]).ok();
    let a: serde_json::Value = serde_json::from_str(a.stdout.trim()).unwrap();
    assert_eq!(a["images"], 180, "{a}");
    let bad = ["--test-labels", "y_te.npy"];
    ae(d, &vector_train(&d.join("x_tr.npy"), &out, &bad)).fails_with(&["--test"]);
    let run = d.join("run");
    let args = ["--labels", "y.npy", "--epochs", "30", "--latent", "2"];
    ae(d, &vector_train(&d.join("x.npy"), &run, &args)).ok();
    let input = read_json(&run.join("model.json"))["model"]["input"].clone();
    assert_eq!(input["columns"], serde_json::json!(["x0", "x1", "x2", "x3"]));
    assert_eq!(input["classes"], serde_json::json!(["0", "1"]));
    assert_eq!(input["scaling"]["offset"][3], 7.0);
    assert_eq!(input["scaling"]["scale"][3], 1.0);
    let eval = ae(d, &["eval", "--run", s(&run), "--json", "--data", "other.npy"]).ok();
    let eval: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
    assert_eq!(eval["images"], 50);
    // Rank-2 data: two codes reconstruct it almost exactly, as PCA does (0.011 at 20 epochs).
    assert!(eval["mse"].as_f64().unwrap() < 0.1 && eval["pca_mse"].as_f64().unwrap() < 1e-6);
    ae(d, &vector_train(&d.join("x.npy"), &d.join("c"), &["--arch", "conv"])).fails_with(&["conv"]);
    ae(d, &vector_train(&d.join("x.npy"), &d.join("c"), &["--color", "rgb"]))
        .fails_with(&["--color"]);
    ae(d, &quick_train(&mnist(), &d.join("c"), &["--label-column", "class"]))
        .fails_with(&["--label-column"]);
}

/// A NumPy .npz archive trains as the same rows as its arrays saved as .npy files: the
/// same model, losses and test metrics, bit for bit; its labels are the array y (or arr_1
/// beside np.savez's arr_0), and an archive without features is refused by name.
#[test]
fn npz_archives_train_as_their_npy_arrays() {
    let dir = tempdir();
    let d = dir.path();
    numpy(
        d,
        r#"
import numpy as np
r = np.random.default_rng(1)
x = r.normal(size=(500, 5)).astype(np.float32)
y = (x[:, 0] > 1.0).astype(np.int64)
np.save("x.npy", x); np.save("y.npy", y)
np.savez_compressed("named.npz", x=x, y=y)
np.savez("positional.npz", x, y)
np.savez("none.npz", a=np.arange(3), b=np.arange(4))
"#,
    );
    let args = ["--epochs", "3", "--latent", "2", "--hidden", "8"];
    let npy = d.join("npy");
    ae(d, &vector_train(&d.join("x.npy"), &npy, &[&args[..], &["--labels", "y.npy"]].concat()))
        .ok();
    let recorded = read_json(&npy.join("model.json"));
    for name in ["named", "positional"] {
        let run = d.join(name);
        ae(d, &vector_train(&d.join(format!("{name}.npz")), &run, &args)).ok();
        let json = read_json(&run.join("model.json"));
        assert_eq!(json["model"]["input"], recorded["model"]["input"], "{name}");
        assert_eq!(json["outcome"]["test"], recorded["outcome"]["test"], "{name}");
        let metrics = |r: &Path| std::fs::read_to_string(r.join("metrics.csv")).unwrap();
        let losses = |r: &Path| -> Vec<String> {
            metrics(r).lines().map(|l| l.split(',').take(3).collect::<Vec<_>>().join(",")).collect()
        };
        assert_eq!(losses(&run), losses(&npy), "{name}");
    }
    ae(d, &vector_train(&d.join("none.npz"), &d.join("x"), &[])).fails_with(&[
        "none.npz",
        "no features",
        "[a, b]",
    ]);
    ae(d, &vector_train(&d.join("named.npz"), &d.join("x"), &["--labels", "y.npy"]))
        .fails_with(&["named.npz", "names its labels itself"]);
}

/// Broken vector files: one clear message naming the file and the place, no run folder.
#[test]
fn broken_vector_files_are_refused_with_the_place() {
    let dir = tempdir();
    let d = dir.path();
    let fails = |name: &str, bytes: &[u8], extra: &[&str], needles: &[&str]| {
        std::fs::write(d.join(name), bytes).unwrap();
        let out = d.join(format!("run-{name}"));
        let mut all = vec![name];
        all.extend_from_slice(needles);
        ae(d, &vector_train(&d.join(name), &out, extra)).fails_with(&all);
        assert!(!out.join("model.json").exists() && !out.join("model.ot").exists(), "{name}");
    };
    let good = "a,b,y\n1,2,p\n3,4,q\n5,6,p\n7,8,q\n";
    fails("ragged.csv", b"a,b,c\n1,2,3\n3,4\n", &[], &["line 3", "2 fields", "3"]);
    fails("cell.csv", b"a,b\n1,2\n3,x7\n", &[], &["line 3", "column 'b'", "x7"]);
    fails("inf.csv", b"a,b\n1,inf\n3,4\n", &[], &["line 2", "column 'b'", "inf"]);
    fails(
        "nan.csv",
        b"a,b\n1,NaN\n3,\n5,6\n",
        &[],
        &["2 missing values in 2 rows", "--missing drop"],
    );
    fails("empty.csv", b"", &[], &["empty"]);
    fails("header.csv", b"a,b\n", &[], &["no data rows"]);
    fails("one.csv", b"a,b\n1,2\n", &[], &["1 row"]);
    fails("label.csv", good.as_bytes(), &["--label-column", "z"], &["--label-column", "'z'"]);
    fails("cols.csv", good.as_bytes(), &["--columns", "a,c"], &["--columns", "'c'"]);
    fails("text.csv", good.as_bytes(), &[], &["column 'y'", "--label-column"]);

    // --missing drop says how many rows went.
    std::fs::write(d.join("gaps.csv"), "a,b\n1,NA\n3,4\n5,6\n7,8\n9,1\n2,3\n").unwrap();
    let run = ae(
        d,
        &vector_train(
            &d.join("gaps.csv"),
            &d.join("gaps"),
            &["--missing", "drop", "--epochs", "1"],
        ),
    )
    .ok();
    assert!(run.stderr.contains("dropped 1 row"), "{}", run.stderr);

    // .npy: the wrong rank, object arrays, a header that promises more than the file has.
    let npy = |descr: &str, shape: &str, payload: &[u8]| {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (header.len() + 11) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(payload);
        bytes
    };
    fails("flat.npy", &npy("<f4", "(4,)", &[0; 16]), &[], &["2-D"]);
    fails("object.npy", &npy("|O", "(2, 2)", &[0; 32]), &[], &["object"]);
    fails("huge.npy", &npy("<f8", "(100000000000, 1000)", &[0; 64]), &[], &["shape"]);
    fails("short.npy", &npy("<f8", "(10, 3)", &[0; 64]), &[], &["240 bytes", "64"]);
}

/// Every hint about reading a file names a flag of the command that prints it, and taking
/// the hint works: `--missing` on each command that reads new rows (tables: drop; series:
/// interpolate, which the run records and applies to later files by itself) and
/// `--wav-channel` on `denoise`. (`fails_with` checks every flag a failure names against
/// the clap definition of its command, across the whole suite.)
#[test]
fn hints_name_flags_that_work_where_they_are_given() {
    let dir = tempdir();
    let d = dir.path();
    let mut table = String::from("a,b,c\n");
    let mut series = String::from("time,value\n");
    for i in 0..240 {
        let x = (i as f32 * 0.37).sin();
        table += &format!("{x},{},{}\n", 2.0 * x, (i % 7) as f32 / 7.0);
        let gap = (100..103).contains(&i);
        series += &format!("{i},{}\n", if gap { "NA".into() } else { x.to_string() });
    }
    std::fs::write(d.join("t.csv"), &table).unwrap();
    std::fs::write(d.join("new.csv"), "a,b,c\n0.1,0.2,0.3\n0.5,NA,0.1\n-0.3,-0.6,0.9\n").unwrap();
    std::fs::write(d.join("s.csv"), &series).unwrap();
    ae(d, &vector_train(&d.join("t.csv"), &d.join("rt"), &["--epochs", "2"])).ok();

    // A table: each command that reads a new file points at its own --missing, which works.
    let cases: [&[&str]; 4] = [
        &["anomaly", "--run", "rt", "--data", "new.csv", "--no-baselines"],
        &["encode", "--run", "rt", "--data", "new.csv", "-o", "codes.csv"],
        &["eval", "--run", "rt", "--data", "new.csv"],
        &["denoise", "--run", "rt", "new.csv", "-o", "den"],
    ];
    for args in cases {
        ae(d, args).fails_with(&[
            "new.csv: 1 missing value in 1 row, the first at line 3, column 'b'; pass --missing \
             drop to leave those rows out",
        ]);
        let run = ae(d, &[args, &["--missing", "drop"]].concat()).ok();
        assert!(run.stderr.contains("1 row left out of new.csv for missing values"), "{args:?}");
    }
    // The denoised file keeps every row; the one left out is written as it was.
    let denoised = std::fs::read_to_string(d.join("den/new-denoised.csv")).unwrap();
    let lines: Vec<&str> = denoised.lines().collect();
    assert_eq!((lines.len(), lines[2]), (4, "0.5,NA,0.1"), "{denoised}");
    let codes = std::fs::read_to_string(d.join("codes.csv")).unwrap();
    assert_eq!(codes.lines().count(), 3, "a header and the two complete rows:\n{codes}");
    ae(d, &["anomaly", "--run", "rt", "--missing", "drop"]).fails_with(&[
        "--missing applies to the files given with --data; the run's own data are read as it \
         recorded",
    ]);
    ae(d, &vector_train(&d.join("t.csv"), &d.join("ri"), &["--missing", "interpolate"]))
        .fails_with(&["--missing interpolate is for series", "--missing drop"]);

    // A series cannot drop steps: both refusals point at interpolate, which fills the gap
    // linearly, is recorded, and reads a later file with gaps by itself.
    let series_train = |extra: &[&str]| {
        let flags = [&["--window", "16", "--epochs", "2"], extra].concat();
        ae(d, &vector_train(&d.join("s.csv"), &d.join("rs"), &flags))
    };
    let fill = "pass --missing interpolate to fill each gap from the steps on either side";
    series_train(&[]).fails_with(&["3 missing values, the first in data row 101", fill]);
    series_train(&["--missing", "drop"]).fails_with(&["so drop does not apply", fill]);
    let run = series_train(&["--missing", "interpolate"]).ok();
    assert!(
        run.stderr.contains("filled 3 missing values by linear interpolation"),
        "{}",
        run.stderr
    );
    let out = d.join("steps.csv");
    ae(d, &["anomaly", "--run", "rs", "--data", "s.csv", "--no-baselines", "-o", s(&out)]).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 241);

    // A stereo WAV: denoise names its own --wav-channel, and reads the channel it is given.
    let wav = |name: &str, channels: u16| {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(d.join(name), spec).unwrap();
        for i in 0..4000 {
            for c in 0..channels {
                w.write_sample(((i as f32 / (5.0 + c as f32)).sin() * 9000.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    };
    wav("mono.wav", 1);
    wav("stereo.wav", 2);
    ae(d, &vector_train(&d.join("mono.wav"), &d.join("rw"), &["--window", "32", "--epochs", "1"]))
        .ok();
    let denoise = ["denoise", "--run", "rw", "stereo.wav", "-o", "clean"];
    ae(d, &denoise).fails_with(&["stereo.wav has 2 channels: choose one with --wav-channel N"]);
    ae(d, &[&denoise[..], &["--wav-channel", "1"]].concat()).ok();
    assert!(d.join("clean/stereo-denoised.wav").is_file());
}

/// CSV files as people have them train without editing: semicolons with decimal commas and
/// spaces (sniffed and recorded), a preamble line (scikit-learn's iris.csv) or a header
/// that is data, an id column, a label column named as labels are, a text column to leave
/// out, a .npy with NaN, and one column.
#[test]
fn csv_files_as_people_have_them() {
    let dir = tempdir();
    let d = dir.path();
    let (mut semi, mut spaced, mut iris, mut ids) = (
        String::from("sepal length;sepal width;kind\n"),
        String::new(),
        String::new(),
        String::new(),
    );
    spaced += "Chins Situps Jumps\n";
    iris += "150,4,setosa,versicolor,virginica\n";
    ids += "ID,a,b,colour,Class\n";
    for i in 0..150 {
        let x = (i as f32 * 0.7).sin();
        semi +=
            &format!("{};{};{}\n", format!("{:.2}", 5.0 + x).replace('.', ","), 3 - i % 3, i % 3);
        spaced += &format!("{} {} {}\n", 5 + i % 4, 100 + i, 60 + i % 9);
        iris += &format!("{:.1},{:.1},{:.1},{:.1},{}\n", 5.0 + x, 3.0 - x, 1.5 * x, 0.2, i % 3);
        let class = if i % 10 == 0 { "odd" } else { "ok" };
        ids += &format!("{},{x},{},{},{class}\n", 1000 + i, 2.0 * x, ["red", "blue"][i % 2]);
    }
    for (name, text) in
        [("semi.csv", &semi), ("spaced.csv", &spaced), ("iris.csv", &iris), ("ids.csv", &ids)]
    {
        std::fs::write(d.join(name), text).unwrap();
    }
    let train = |data: &str, out: &str, extra: &[&str]| {
        let flags = [&["--epochs", "1"], extra].concat();
        ae(d, &vector_train(&d.join(data), &d.join(out), &flags))
    };
    let features =
        |out: &str| read_json(&d.join(out).join("model.json"))["model"]["input"]["columns"].clone();

    // Sniffed delimiters, recorded; a comma beside semicolons is the decimal point.
    let run = train("semi.csv", "semi", &[]).ok();
    assert!(
        run.stderr
            .contains("semi.csv is read as semicolon-separated (sniffed; --delimiter chooses)"),
        "{}",
        run.stderr
    );
    assert_eq!(features("semi"), serde_json::json!(["sepal length", "sepal width", "kind"]));
    assert_eq!(read_json(&d.join("semi/model.json"))["data"]["vectors"]["delimiter"], ";");
    let run = train("spaced.csv", "spaced", &[]).ok();
    assert!(run.stderr.contains("read as space-separated"), "{}", run.stderr);
    assert_eq!(features("spaced"), serde_json::json!(["Chins", "Situps", "Jumps"]));
    train("spaced.csv", "forced", &["--delimiter", "comma"]).fails_with(&[
        "column 'Chins Situps Jumps' holds text (line 2: '5 100 60') with more than 50 \
         distinct values: an identifier or free text, not a category to one-hot encode; pass \
         --ignore-columns 'Chins Situps Jumps' to leave it out",
    ]);

    // A header of numbers gets a note naming the options; with them the file reads, and
    // later files of the run are read the same way without them.
    let run = train("iris.csv", "iris-as-is", &[]).ok();
    assert!(
        run.stderr.contains(
            "iris.csv: line 1, read as the header, names columns with numbers ('150', …): if that \
         line is data, pass --no-header; if it comes before the header, --skip-rows 1"
        ),
        "{}",
        run.stderr
    );
    train("iris.csv", "iris", &["--skip-rows", "1", "--no-header", "--label-column", "x4"]).ok();
    assert_eq!(features("iris"), serde_json::json!(["x0", "x1", "x2", "x3"]));
    let out = d.join("iris-scores.csv");
    ae(d, &["anomaly", "--run", "iris", "--data", "iris.csv", "--no-baselines", "-o", s(&out)])
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 151);

    // An id column is left out, a column named Class is the labels, a text column can be
    // left out by name; --ignore-columns with --columns is bad usage.
    let run = train("ids.csv", "ids", &["--ignore-columns", "colour"]).ok();
    for note in [
        "column 'Class' of",
        "is taken as the labels, not a feature (--label-column none reads it as a feature)",
        "column 'ID' of",
        "is left out: distinct integers, a row identifier (--columns chooses the columns)",
    ] {
        assert!(run.stderr.contains(note), "{note}:\n{}", run.stderr);
    }
    assert_eq!(features("ids"), serde_json::json!(["a", "b"]));
    train("ids.csv", "ids2", &[]).ok();
    assert_eq!(features("ids2"), serde_json::json!(["a", "b", "colour=blue", "colour=red"]));
    train("ids.csv", "ids3", &["--ignore-columns", "color"]).fails_with(&[
        "--ignore-columns no column named 'color'; the columns are 'ID', 'a', 'b', 'colour'",
    ]);
    let both = train("ids.csv", "ids4", &["--ignore-columns", "colour", "--columns", "a"]);
    assert_eq!(both.fails_with(&["--ignore-columns", "--columns"]).code, Some(2));

    // .npy NaN follows --missing; one feature column gets a note.
    let npy = numpy(
        d,
        "import numpy as np; x = np.random.default_rng(0).normal(size=(60, 2)).astype('f4'); \
        x[5, 1] = np.nan; np.save('gaps.npy', x); np.save('one.npy', x[:, :1]); print('ok')",
    );
    assert_eq!(npy, "ok");
    train("gaps.npy", "gaps", &[]).fails_with(&[
        "1 missing value in 1 row, the first at row 5, column 'x1' (NaN)",
        "--missing drop",
    ]);
    let run = train("gaps.npy", "gaps", &["--missing", "drop"]).ok();
    assert!(run.stderr.contains("dropped 1 row"), "{}", run.stderr);
    std::fs::write(d.join("one.csv"), "v\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n").unwrap();
    let run = train("one.csv", "one", &[]).ok();
    assert!(
        run.stderr.contains("has one feature column ('v'): a code of k = 1 can hold it whole"),
        "{}",
        run.stderr
    );
    // data info reads a table with the same flags, and refuses them on an image folder.
    let info = ae(d, &["data", "info", "semi.csv", "--json"]).ok();
    let rows: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(
        (rows["rows"].as_u64(), rows["columns"][0]["name"].as_str()),
        (Some(150), Some("sepal length"))
    );
    ae(d, &["data", "info", s(&mnist()), "--skip-rows", "1"])
        .fails_with(&["--skip-rows is for a table file (.csv, .npy, .npz), not an image folder"]);
}

/// A vector run is deterministic (same seed → the same losses and weights) and one killed
/// mid-checkpoint resumes to the uninterrupted run, bit for bit: in denoise mode, so the
/// per-step Gaussian noise (unclamped for scaled features) and the trimmed loss are part
/// of what must repeat.
#[test]
fn vector_runs_repeat_and_resume_exactly() {
    let dir = tempdir();
    let d = dir.path();
    let args = |out: &Path| {
        let flags = ["--label-column", "class", "--limit", "4000", "--epochs", "3"];
        let mut flags = flags.to_vec();
        flags.extend(["--mode", "denoise", "--noise-level", "0.5"]);
        vector_train(&shuttle(), out, &flags)
    };
    let (whole, again, killed) = (d.join("whole"), d.join("again"), d.join("killed"));
    ae(d, &args(&whole)).ok();
    ae(d, &args(&again)).ok();
    crate::resume::assert_same_run(&whole, &again);
    let out = crate::resume::with_fault(d, &args(&killed), "abort:checkpoint.ot:2");
    assert_eq!(out.code, None, "killed by a signal");
    ae(d, &["train", "--resume", s(&killed)]).ok();
    crate::resume::assert_same_run(&whole, &killed);
    // Salt-and-pepper noise means nothing for scaled features.
    let salt = ["--mode", "denoise", "--noise", "salt-pepper"];
    ae(d, &vector_train(&shuttle(), &d.join("sp"), &salt)).fails_with(&["salt-pepper", "scaled"]);
}

/// A text column with few distinct values is one-hot encoded: its levels are recorded and
/// applied to new files (a level the run did not see gives zeros, with a note), `--explain`
/// names the column and its level, `denoise` writes it back as it was, and a column of
/// free text is refused with the flag that leaves it out.
#[test]
fn text_columns_are_one_hot_encoded() {
    let dir = tempdir();
    let d = dir.path();
    let colours = ["red", "green", "blue"];
    let (mut train, mut new, mut names) = (
        String::from("a,b,colour,class\n"),
        String::from("a,b,colour\n"),
        String::from("a,name\n"),
    );
    for i in 0..300 {
        let c = i * 7 % 3;
        let x = c as f32 + 0.1 * (i as f32 * 0.37).sin();
        let class = if i % 25 == 0 { "odd" } else { "ok" };
        let colour = if i % 25 == 0 { colours[(c + 1) % 3] } else { colours[c] };
        train += &format!("{x},{},{colour},{class}\n", 2.0 * x);
        names += &format!("{i},name{i}\n");
    }
    for (i, colour) in ["red", "purple", "blue", "green"].iter().enumerate() {
        new += &format!("{},{},{colour}\n", i % 3, 2 * (i % 3));
    }
    std::fs::write(d.join("train.csv"), &train).unwrap();
    std::fs::write(d.join("new.csv"), &new).unwrap();
    std::fs::write(d.join("names.csv"), &names).unwrap();

    let flags = ["--epochs", "20", "--scale", "standard"];
    let run = ae(d, &vector_train(&d.join("train.csv"), &d.join("run"), &flags)).ok();
    assert!(
        run.stderr.contains(
            "train.csv: text column 'colour' is one-hot encoded as 3 features (blue, green, red); \
             if it holds labels, pass --label-column colour"
        ),
        "{}",
        run.stderr
    );
    // A table's score averages five autoencoders unless --ensemble says otherwise: the
    // run's and four from the next seeds, kept beside it; up to 64 features it adds the
    // columns' tails.
    assert!(run.stderr.contains("--tail-score, --ensemble 5"), "{}", run.stderr);
    assert!(run.stderr.contains("trained 4 more autoencoders"), "{}", run.stderr);
    assert!(d.join("run/detector.safetensors").exists());
    let recorded = &read_json(&d.join("run/model.json"))["train"];
    assert_eq!((&recorded["ensemble"], &recorded["tail_score"]), (&5.into(), &true.into()));
    let zero = vector_train(&d.join("train.csv"), &d.join("none"), &["--ensemble", "0"]);
    ae(d, &zero).fails_with(&["--ensemble must be between 1 and 16, got 0"]);
    // A wider table (65 features) is scored without the tails unless asked; one model and
    // no tails leave no detector, the squared error is the score.
    let header: Vec<String> = (0..65).map(|j| format!("f{j}")).collect();
    let mut wide = header.join(",") + "\n";
    for i in 0..40 {
        let row: Vec<String> = (0..65).map(|j| ((i * 7 + j * 3) % 11).to_string()).collect();
        wide += &(row.join(",") + "\n");
    }
    std::fs::write(d.join("wide.csv"), wide).unwrap();
    let plain = ["--epochs", "1", "--ensemble", "1"];
    let run = ae(d, &vector_train(&d.join("wide.csv"), &d.join("wide"), &plain)).ok();
    assert!(!run.stderr.contains("--tail-score"), "{}", run.stderr);
    assert!(!d.join("wide/detector.safetensors").exists());
    let asked = ["--epochs", "1", "--ensemble", "1", "--tail-score"];
    ae(d, &vector_train(&d.join("wide.csv"), &d.join("asked"), &asked)).ok();
    assert!(d.join("asked/detector.safetensors").exists());
    let input = read_json(&d.join("run/model.json"))["model"]["input"].clone();
    assert_eq!(
        input["columns"],
        serde_json::json!(["a", "b", "colour=blue", "colour=green", "colour=red"])
    );
    assert_eq!(
        input["categories"],
        serde_json::json!([{"column": "colour", "levels": ["blue", "green", "red"]}])
    );
    // One-hot: every training row has exactly one level, so the fitted means (each level's
    // share of the rows) sum to 1 and each spread is sqrt(p (1 - p)).
    let offset: Vec<f64> =
        (2..5).map(|j| input["scaling"]["offset"][j].as_f64().unwrap()).collect();
    assert!((offset.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{offset:?}");
    for j in 2..5 {
        let p = offset[j - 2];
        let scale = input["scaling"]["scale"][j].as_f64().unwrap();
        assert!((scale - (p * (1.0 - p)).sqrt()).abs() < 1e-6, "{scale} for p = {p}");
    }

    // New rows without labels, one of a colour the run never saw.
    let args = ["anomaly", "--run", "run", "--data", "new.csv", "--explain", "4", "--no-baselines"];
    let scored = ae(d, &[&args[..], &["-o", "new-scores.csv"]].concat()).ok();
    assert!(
        scored.stderr.contains(
            "new.csv: 1 value of text columns the run did not see (the first: 'purple' in \
             'colour'); their one-hot features are all 0"
        ),
        "{}",
        scored.stderr
    );
    assert_eq!(std::fs::read_to_string(d.join("new-scores.csv")).unwrap().lines().count(), 5);
    let explained = std::fs::read_to_string(d.join("run/explain.csv")).unwrap();
    let colour_rows: Vec<&str> = explained.lines().filter(|l| l.contains(",colour,")).collect();
    assert_eq!(colour_rows.len(), 4, "one record per row for the column:\n{explained}");
    assert!(!explained.contains("colour="), "{explained}");
    assert!(explained.lines().any(|l| l.contains(",colour,(unseen),")), "{explained}");
    assert!(explained.lines().any(|l| l.contains(",colour,blue,")), "{explained}");

    // Labelled rows: the odd colours are found.
    let a = ae(d, &["anomaly", "--run", "run", "--normal-classes", "ok", "--json"]).ok();
    let a: serde_json::Value = serde_json::from_str(a.stdout.trim()).unwrap();
    assert!(a["roc_auc"].as_f64().unwrap() > 0.9, "{a}");

    // denoise writes the numbers back and the text column as it was.
    ae(d, &["denoise", "--run", "run", "new.csv", "-o", "clean"]).ok();
    let clean = std::fs::read_to_string(d.join("clean/new-denoised.csv")).unwrap();
    let kept: Vec<&str> = clean.lines().map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(kept, ["colour", "red", "purple", "blue", "green"]);

    // Free text is no category.
    let names = |extra: &[&str]| ae(d, &vector_train(&d.join("names.csv"), &d.join("n"), extra));
    names(&[]).fails_with(&[
        "column 'name' holds text (line 2: 'name0') with more than 50 distinct values",
        "pass --ignore-columns name to leave it out",
    ]);
    names(&["--ignore-columns", "name", "--epochs", "1"]).ok();
}
