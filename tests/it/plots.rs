//! Plots decode as images of the expected size and show something.

use crate::util::*;
use std::path::Path;

/// Decodes a PNG and returns (width, height, number of distinct colours).
fn png_summary(path: &Path) -> (u32, u32, usize) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    (img.width(), img.height(), colours.len())
}

#[test]
fn train_writes_a_loss_plot_and_a_three_row_grid() {
    let run = shared_denoise_run();
    let (w, h, colours) = png_summary(&run.join("loss.png"));
    assert_eq!((w, h), (800, 500));
    assert!(colours > 20, "loss.png looks blank: {colours} colours");
    // Three rows (clean / noisy / denoised) of ten 28x28 digits magnified 3x.
    let layout = ae_tch::plot::GridLayout::new(3, 10, 28, 28);
    let (w, h, colours) = png_summary(&run.join("grid.png"));
    assert_eq!((w, h), layout.size());
    assert!(colours > 100, "grid.png looks blank: {colours} colours");
}

#[test]
fn grid_command_renders_n_columns_in_png_and_svg() {
    let run = shared_denoise_run();
    let dir = tempdir();
    let r = run.to_str().unwrap();
    ae(dir.path(), &["grid", "--run", r, "-n", "4", "-o", "g.png"]).ok();
    let layout = ae_tch::plot::GridLayout::new(3, 4, 28, 28);
    assert_eq!(png_summary(&dir.path().join("g.png")).0, layout.size().0);
    ae(dir.path(), &["grid", "--run", r, "-n", "2", "-o", "g.svg"]).ok();
    let svg = std::fs::read_to_string(dir.path().join("g.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("denoised"), "{}", &svg[..100]);
    ae(dir.path(), &["grid", "--run", r, "-n", "0", "-o", "g.png"])
        .fails_with(&["-n must be between 1 and 200"]);
    // More than 20 images wrap into bands of rows (3 rows each for a denoising run), the
    // last one padded; far more are refused instead of a 176,154-pixel-wide PNG.
    ae(dir.path(), &["grid", "--run", r, "-n", "45", "-o", "w.png"]).ok();
    let wrapped = ae_tch::plot::GridLayout::new(9, 20, 28, 28).size();
    let (w, h, _) = png_summary(&dir.path().join("w.png"));
    assert_eq!((w, h), wrapped);
    let r5000 = ae(dir.path(), &["grid", "--run", r, "-n", "5000", "-o", "x.png"]);
    assert_eq!(r5000.fails_with(&["-n must be between 1 and 200", "got 5000"]).code, Some(2));
    ae(dir.path(), &["grid", "--run", r, "-o", "g.gif"]).fails_with(&["g.gif", ".png or .svg"]);
    ae(dir.path(), &["grid", "--run", r, "-o", "no/g.png"])
        .fails_with(&["writing no/g.png: folder no does not exist"]);
    let json = run.join("model.json");
    ae(dir.path(), &["grid", "--run", json.to_str().unwrap(), "-o", "g.png"])
        .fails_with(&["model.json is a file; give the run folder"]);
}

#[test]
fn plot_loss_overlays_runs_and_rejects_bad_csv() {
    let run = shared_denoise_run();
    let dir = tempdir();
    let other = dir.path().join("other");
    copy_dir(run, &other);
    let a = run.join("metrics.csv");
    let b = other.join("metrics.csv");
    let out =
        ae(dir.path(), &["plot-loss", a.to_str().unwrap(), b.to_str().unwrap(), "-o", "both.svg"])
            .ok();
    assert!(out.stdout.contains("both.svg"));
    let svg = std::fs::read_to_string(dir.path().join("both.svg")).unwrap();
    assert!(
        svg.contains("other train") && svg.contains("denoise validation"),
        "legend names the runs"
    );
    ae(dir.path(), &["plot-loss", a.to_str().unwrap(), "-o", "one.png", "--log-y"]).ok();
    assert_eq!(png_summary(&dir.path().join("one.png")).0, 800);

    std::fs::write(dir.path().join("bad.csv"), "epoch,train_loss\nx,1\n").unwrap();
    ae(dir.path(), &["plot-loss", "bad.csv", "-o", "x.png"])
        .fails_with(&["bad.csv", "not an ae-tch metrics.csv"]);
    ae(dir.path(), &["plot-loss", "nope.csv", "-o", "x.png"]).fails_with(&["nope.csv"]);
    assert!(!dir.path().join("x.png").exists());
    // A run folder stands for its metrics.csv, and the axis says what its loss is; a
    // folder without one is named.
    ae(dir.path(), &["plot-loss", run.to_str().unwrap(), "-o", "run.svg"]).ok();
    let svg = std::fs::read_to_string(dir.path().join("run.svg")).unwrap();
    assert!(svg.contains("loss (BCE per value)"), "the axis names the loss (images: BCE)");
    // Runs whose folders share a name are told apart by their paths, or by --label.
    let (a_dn, b_dn) = (dir.path().join("a/dn"), dir.path().join("b/dn"));
    copy_dir(run, &a_dn);
    copy_dir(run, &b_dn);
    ae(dir.path(), &["plot-loss", "a/dn", "b/dn/metrics.csv", "-o", "dn.svg"]).ok();
    let svg = std::fs::read_to_string(dir.path().join("dn.svg")).unwrap();
    assert!(svg.contains("a/dn train") && svg.contains("b/dn train"), "paths tell them apart");
    let args =
        ["plot-loss", "a/dn", "b/dn", "--label", "first", "--label", "second", "-o", "l.svg"];
    ae(dir.path(), &args).ok();
    let svg = std::fs::read_to_string(dir.path().join("l.svg")).unwrap();
    assert!(svg.contains("first train") && svg.contains("second validation"));
    let r = ae(dir.path(), &["plot-loss", "a/dn", "b/dn", "--label", "x", "-o", "x.png"]);
    assert_eq!(r.fails_with(&["--label was given 1 time(s) for 2 run(s)"]).code, Some(2));
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    ae(dir.path(), &["plot-loss", "empty", "-o", "x.png"])
        .fails_with(&["empty holds no metrics.csv", "run folder"]);
}

#[test]
fn plot_latent_scatters_codes_and_decodes_the_2d_manifold() {
    let dir = tempdir();
    let r = shared_denoise_run().to_str().unwrap().to_string();
    ae(dir.path(), &["plot-latent", "--run", &r, "-o", "z.png"]).ok();
    let (w, h, colours) = png_summary(&dir.path().join("z.png"));
    assert_eq!((w, h), (800, 700));
    assert!(colours > 30, "ten label colours, blended: {colours}");
    ae(dir.path(), &["plot-latent", "--run", &r, "-o", "z.svg"]).ok();
    let svg = std::fs::read_to_string(dir.path().join("z.svg")).unwrap();
    assert!(
        svg.contains("PC 1 of z") && svg.contains("k = 16"),
        "axes say the codes were projected"
    );
    ae(dir.path(), &["plot-latent", "--run", &r, "-o", "z.png", "--manifold", "m.png"])
        .fails_with(&["--manifold needs a 2-D latent space", "k = 16"]);

    let k2 = dir.path().join("k2");
    ae(dir.path(), &quick_train(&mnist(), &k2, &["--latent", "2", "--epochs", "2"])).ok();
    ae(
        dir.path(),
        &["plot-latent", "--run", "k2", "-o", "z2.png", "--manifold", "m.png", "--steps", "4"],
    )
    .ok();
    let layout = ae_tch::plot::GridLayout::new(4, 4, 28, 28);
    let (w, h, colours) = png_summary(&dir.path().join("m.png"));
    assert_eq!((w, h), layout.size());
    assert!(colours > 50, "decoded digits in grey levels: {colours}");
}
