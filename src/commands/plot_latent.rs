//! `ae-tch plot-latent`: the test set's codes in 2-D (as they are for k = 2, else by PCA or
//! t-SNE), coloured by label, with the 5-NN label agreement of the picture; for 2-D codes
//! the decoded manifold.

use crate::atomic::write_atomic;
use crate::cli::{LatentMethod, PlotLatentArgs};
use crate::data;
use crate::metrics::tsne::{self, Tsne};
use crate::metrics::{self, pca::Pca};
use crate::plot::{self, Format, GridRow};
use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

/// Neighbours asked in the label agreement `plot-latent` reports.
const AGREEMENT_K: i64 = 5;

pub fn run(args: PlotLatentArgs) -> Result<()> {
    let format = Format::from_path(&args.output)?;
    let manifold_format = args.manifold.as_deref().map(Format::from_path).transpose()?;
    if !(2..=30).contains(&args.steps) {
        bail!("--steps must be between 2 and 30, got {}", args.steps);
    }
    let loaded = super::open_run(&args.run)?;
    let k = loaded.manifest.model.latent;
    if k < 2 {
        bail!("plot-latent needs a latent size of at least 2; this run has k = {k}");
    }
    if args.manifold.is_some() {
        loaded.spec().context("--manifold draws decoded images")?;
    }
    if args.manifold.is_some() && k != 2 {
        bail!("--manifold needs a 2-D latent space (train with --latent 2); this run has k = {k}");
    }
    let tsne = args.method == LatentMethod::Tsne;
    if tsne && k <= 2 {
        crate::log::note(format_args!(
            "note: --method tsne is not used: the codes have k = {k} and are drawn as they are"
        ));
    }
    if tsne && args.points < 4 {
        bail!("--points must be at least 4, got {}", args.points);
    }
    let images = loaded.test_rows((args.data.as_deref(), args.read.reading()))?;
    let x = images.to_unit(loaded.device);
    let z = metrics::batched(&x, |b| loaded.model.encode(b));
    // t-SNE embeds a seeded sample of at most --points rows.
    let (z_shown, labels) = if tsne && k > 2 && images.len() > args.points {
        sample(&z, images.labels(), images.len(), &args)
    } else {
        (z.shallow_clone(), images.labels().map(|l| l.to_vec()))
    };
    let (xy, axes, title) = picture(&args, k, (&z, &z_shown), images.noun())?;
    let flat = data::to_host_f32(&xy)?;
    let points: Vec<(f64, f64)> =
        flat.chunks_exact(2).map(|p| (p[0] as f64, p[1] as f64)).collect();
    let input = &loaded.manifest.model.input;
    let names: Vec<String> = (0..=u8::MAX).map(|c| input.class_name(c)).collect();
    let axes = (axes.0.as_str(), axes.1.as_str());
    let bytes = plot::scatter(&points, labels.as_deref(), &names, axes, &title, format)?;
    write_atomic(&args.output, &bytes)?;
    let mut report = format!("wrote {}\n", args.output.display());
    if let Some(labels) = &labels {
        // How well the picture keeps the classes apart, as a number.
        let agreement = tsne::neighbour_agreement(&xy, labels, AGREEMENT_K);
        report += &format!(
            "{AGREEMENT_K}-NN label agreement in the 2-D picture: {agreement:.4} ({} points)\n",
            labels.len()
        );
    }

    if let (Some(path), Some(format)) = (&args.manifold, manifold_format) {
        write_manifold(&loaded, &z, args.steps, path, format)?;
        report += &format!("wrote {}\n", path.display());
    }
    super::print(&report)
}

/// A seeded sample of `args.points` of the `n` codes `z` (in their order) and their
/// labels, for t-SNE.
fn sample(
    z: &Tensor,
    labels: Option<&[u8]>,
    n: usize,
    args: &PlotLatentArgs,
) -> (Tensor, Option<Vec<u8>>) {
    let mut order = data::split::permutation(n, args.seed);
    order.truncate(args.points);
    order.sort_unstable();
    let index = Tensor::from_slice(&order.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let labels = labels.map(|l| order.iter().map(|&i| l[i]).collect::<Vec<u8>>());
    (z.index_select(0, &index.to_device(z.device())), labels)
}

/// The codes in 2-D, the axes' names and the title: `z_shown` embedded by t-SNE (k > 2
/// with `--method tsne`), the codes `z` as they are (k = 2), or `z` projected on its
/// first two principal components. `k` is the code size, `noun` what a test row is.
fn picture(
    args: &PlotLatentArgs,
    k: i64,
    (z, z_shown): (&Tensor, &Tensor),
    noun: &str,
) -> Result<(Tensor, (String, String), String)> {
    Ok(if args.method == LatentMethod::Tsne && k > 2 {
        let settings = Tsne {
            perplexity: args.perplexity,
            seed: args.seed,
            angle: args.angle,
            ..Default::default()
        };
        (
            settings.embed(z_shown).context("t-SNE of the codes")?,
            ("t-SNE 1".to_string(), "t-SNE 2".to_string()),
            format!(
                "latent codes of {} test {noun} (k = {k}, t-SNE, perplexity {})",
                z_shown.size()[0],
                args.perplexity
            ),
        )
    } else if k == 2 {
        (
            z.shallow_clone(),
            ("z₁".to_string(), "z₂".to_string()),
            format!("latent codes of the test {noun}"),
        )
    } else {
        let pca = Pca::fit(z, 2).context("projecting the codes to 2-D")?;
        let var = Vec::<f64>::try_from(pca.variances.to_kind(Kind::Double).to_device(Device::Cpu))?;
        let total = z.var_dim(0, true, false).sum(Kind::Double).double_value(&[]);
        let share = |i: usize| 100.0 * var[i] / total.max(f64::MIN_POSITIVE);
        (
            pca.project(z),
            (
                format!("PC 1 of z ({:.0}% of variance)", share(0)),
                format!("PC 2 of z ({:.0}% of variance)", share(1)),
            ),
            format!("latent codes of the test {noun} (k = {k}, PCA to 2-D)"),
        )
    })
}

/// Decodes a `steps × steps` lattice spanning the 2nd–98th percentile of each code axis.
fn write_manifold(
    loaded: &super::LoadedRun,
    z: &Tensor,
    steps: usize,
    path: &std::path::Path,
    format: Format,
) -> Result<()> {
    let zs = data::to_host_f32(z)?;
    let axis = |j: usize| -> Vec<f64> {
        let v: Vec<f64> = zs.iter().skip(j).step_by(2).map(|&x| x as f64).collect();
        let lo = metrics::detection::percentile(&v, 2.0).unwrap_or(-1.0);
        let hi = metrics::detection::percentile(&v, 98.0).unwrap_or(1.0);
        (0..steps).map(|i| lo + (hi - lo) * i as f64 / (steps - 1) as f64).collect()
    };
    let (z1, z2) = (axis(0), axis(1));
    // Rows run from high z₂ (top) to low, columns from low z₁ to high, as on a plot.
    let lattice: Vec<f32> =
        z2.iter().rev().flat_map(|&b| z1.iter().flat_map(move |&a| [a as f32, b as f32])).collect();
    let codes =
        Tensor::from_slice(&lattice).view([(steps * steps) as i64, 2]).to_device(loaded.device);
    let decoded = tch::no_grad(|| loaded.model.decode(&codes));
    let pixels = data::to_host_f32(&decoded)?;
    let model = &loaded.manifest.model;
    let shape = super::image_shape(model);
    let per_row = steps * model.input_dim() as usize;
    let labels: Vec<String> = z2.iter().rev().map(|b| format!("z₂ = {b:.2}")).collect();
    let rows: Vec<GridRow> = pixels
        .chunks_exact(per_row)
        .zip(&labels)
        .map(|(images, label)| GridRow { label, images })
        .collect();
    let title =
        format!("decoded manifold: z₁ from {:.2} to {:.2}, left to right", z1[0], z1[steps - 1]);
    let bytes = plot::image_grid(&rows, shape, &title, format)?;
    write_atomic(path, &bytes)
}
