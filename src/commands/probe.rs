//! `ae-tch probe`: how much of the labels the run's codes carry — a logistic regression
//! and k-NN fitted on the codes of the training split, scored on the test split — beside
//! the same classifiers on the raw values and on PCA with the same k.

use crate::atomic::write_atomic;
use crate::cli::{ProbeArgs, ProbeMethod};
use crate::data::{Rows, Split};
use crate::metrics::probe::{self, ProbeData, Score};
use crate::plot;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// One feature set's test accuracies.
#[derive(Debug, Serialize)]
struct Row {
    features: &'static str,
    dims: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    logreg: Option<Score>,
    #[serde(skip_serializing_if = "Option::is_none")]
    knn: Option<Score>,
}

/// What `probe` prints (as JSON with `--json`).
#[derive(Debug, Serialize)]
struct Report {
    train_rows: usize,
    test_rows: usize,
    classes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels_per_class: Option<usize>,
    rows: Vec<Row>,
}

pub fn run(args: ProbeArgs) -> Result<()> {
    let loaded = super::open_run(&args.run)?;
    let train = loaded.rows((args.data.as_deref(), args.read.reading()), Split::Train)?;
    let test = loaded.rows((args.data.as_deref(), args.read.reading()), Split::Test)?;
    let (train_labels, test_labels) = labels_of(&args, &train, &test)?;
    let kept = match args.labels_per_class {
        Some(0) => bail!("--labels-per-class must be at least 1"),
        Some(n) => probe::labels_per_class(&train_labels, n, args.seed)?,
        None => (0..train_labels.len()).collect(),
    };
    let classes = train_labels.iter().chain(&test_labels).map(|&c| c as i64).max().unwrap_or(0) + 1;
    let index = Tensor::from_slice(&kept.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let labels = |l: &[u8]| Tensor::from_slice(&l.iter().map(|&c| c as i64).collect::<Vec<_>>());
    let (y_train, y_test) = (labels(&train_labels).index_select(0, &index), labels(&test_labels));
    let sets = feature_sets(&loaded, (&train, &test), &index)?;

    let plot_format = args.plot.as_deref().map(plot::Format::from_path).transpose()?;
    let want = |m: ProbeMethod| args.method == m || args.method == ProbeMethod::Both;
    if plot_format.is_some() && !want(ProbeMethod::Logreg) {
        bail!("--plot draws the logistic regression's confusion matrix: drop --method knn");
    }
    let mut rows = Vec::new();
    let mut predicted = None;
    for (features, tr, te) in &sets {
        let d = ProbeData {
            train: tr,
            train_labels: &y_train,
            test: te,
            test_labels: &y_test,
            classes,
        };
        let logreg = want(ProbeMethod::Logreg).then(|| probe::logistic_regression(&d, args.seed));
        rows.push(Row {
            features,
            dims: tr.size()[1],
            logreg: logreg.as_ref().map(|l| l.0),
            knn: want(ProbeMethod::Knn).then(|| probe::knn(&d, args.seed)),
        });
        // The last set is the codes: its predictions make the confusion matrix.
        predicted = logreg.map(|l| l.1);
    }
    if let (Some(path), Some(format), Some(predicted)) = (&args.plot, plot_format, &predicted) {
        let counts = probe::confusion(&y_test, predicted, classes);
        let input = &loaded.manifest.model.input;
        let names: Vec<String> = (0..classes).map(|c| input.class_name(c as u8)).collect();
        let title = "logistic regression on the autoencoder's codes: test rows";
        write_atomic(path, &plot::confusion_matrix(&counts, &names, title, format)?)?;
    }
    let report = Report {
        train_rows: kept.len(),
        test_rows: test_labels.len(),
        classes,
        labels_per_class: args.labels_per_class,
        rows,
    };
    if args.json {
        return super::print(&(serde_json::to_string(&report)? + "\n"));
    }
    super::print(&report.table(train.noun()))
}

/// The training and test rows' labels; an error that says where labels come from when
/// the data have none.
fn labels_of(args: &ProbeArgs, train: &Rows, test: &Rows) -> Result<(Vec<u8>, Vec<u8>)> {
    let no_labels = || {
        format!(
            "probe needs labels, and the data of {} have none (a folder of images needs \
             label folders; a vector file, train with --label-column or --labels)",
            args.run.dir.display()
        )
    };
    let train_labels = train.labels().with_context(no_labels)?.to_vec();
    let test_labels = test.labels().with_context(no_labels)?.to_vec();
    Ok((train_labels, test_labels))
}

/// The three feature sets the classifiers are fitted on, each as (name, the kept
/// training rows at `index`, the test rows): the raw values, PCA with the model's k
/// (fitted on the run's training rows, as eval's baseline) and the autoencoder's codes.
fn feature_sets(
    loaded: &super::LoadedRun,
    (train, test): (&Rows, &Rows),
    index: &Tensor,
) -> Result<[(&'static str, Tensor, Tensor); 3]> {
    let raw = |r: &Rows| r.to_unit(Device::Cpu);
    let (x_train, x_test) = (raw(train).index_select(0, index), raw(test));
    let model = &loaded.manifest.model;
    let pca =
        super::pca_baseline(&loaded.training_sets("the PCA baseline")?.0, model, Device::Cpu)?;
    let codes = |x: &Tensor| {
        let z = tch::no_grad(|| {
            crate::metrics::batched(&x.to_device(loaded.device), |b| loaded.model.encode(b))
        });
        z.to_device(Device::Cpu).to_kind(Kind::Float)
    };
    Ok([
        (
            if train.images().is_some() { "raw pixels" } else { "raw features" },
            x_train.shallow_clone(),
            x_test.shallow_clone(),
        ),
        (
            "PCA, same k",
            pca.project(&x_train).to_kind(Kind::Float),
            pca.project(&x_test).to_kind(Kind::Float),
        ),
        ("autoencoder code", codes(&x_train), codes(&x_test)),
    ])
}

impl Report {
    /// The report as the table printed without `--json`; `noun` is what a row is.
    fn table(&self, noun: &str) -> String {
        let mut out = format!(
            "test accuracy; classifiers fitted on {} labelled training {} ({} classes), scored on {} test {1}\n\n{:<18}{:>6}{:>16}{:>16}\n",
            self.train_rows,
            noun,
            self.classes,
            self.test_rows,
            "features",
            "dims",
            "logreg (λ)",
            "k-NN (k)"
        );
        for r in &self.rows {
            let cell = |s: Option<Score>, k: bool| match s {
                Some(s) if k => format!("{:.4} ({})", s.accuracy, s.setting),
                Some(s) => format!("{:.4} ({:.0e})", s.accuracy, s.setting),
                None => "-".into(),
            };
            out += &format!(
                "{:<18}{:>6}{:>16}{:>16}\n",
                r.features,
                r.dims,
                cell(r.logreg, false),
                cell(r.knn, true)
            );
        }
        out
    }
}
