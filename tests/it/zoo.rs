//! Model and training options: corruption kinds, losses, activations, regularisers,
//! schedules and early stopping, each through the one training loop.

use crate::util::*;
use ae_tch::config::{Activation, Layers, Loss, ModelConfig, TrainConfig};
use ae_tch::{data, metrics, model::Autoencoder, train};
use tch::{nn, Device};

fn val_losses(run: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect()
}

#[test]
fn every_noise_kind_trains_and_reloads_to_identical_metrics() {
    let dir = tempdir();
    for (kind, label) in [
        ("gaussian", "σ = 0.3"),
        ("masking", "masking, p = 0.3"),
        ("salt-pepper", "salt-pepper, p = 0.3"),
    ] {
        let out = dir.path().join(kind);
        let flags = ["--mode", "denoise", "--noise", kind, "--noise-level", "0.3", "--epochs", "3"];
        let run = ae(dir.path(), &quick_train(&mnist(), &out, &flags)).ok();
        assert!(run.stdout.contains(label), "{kind}: {}", run.stdout);
        let val = val_losses(&out);
        assert!(val[2] < val[0], "{kind}: validation loss did not fall: {val:?}");
        let manifest = read_json(&out.join("model.json"));
        assert_eq!(manifest["train"]["noise"], kind);
        let eval =
            ae(dir.path(), &["eval", "--threads", "1", "--device", "cpu", "--run", kind, "--json"])
                .ok();
        let measured: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
        assert_eq!(measured, manifest["outcome"]["test"], "{kind}");
        assert!(
            measured["psnr_db"].as_f64() > measured["noisy_psnr_db"].as_f64(),
            "{kind}: {measured}"
        );
    }
}

#[test]
fn losses_activations_regularisers_and_schedules_train() {
    let dir = tempdir();
    let cases: [&[&str]; 3] = [
        &["--loss", "bce", "--activation", "gelu"],
        &[
            "--activation",
            "tanh",
            "--l1-latent",
            "0.01",
            "--weight-decay",
            "0.01",
            "--lr-schedule",
            "cosine",
        ],
        &["--activation", "leaky-relu", "--grad-clip", "0.5", "--lr-schedule", "plateau"],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let out = dir.path().join(format!("r{i}"));
        let mut all = vec!["--epochs", "3"];
        all.extend_from_slice(flags);
        ae(dir.path(), &quick_train(&mnist(), &out, &all)).ok();
        let val = val_losses(&out);
        assert!(val[2] < val[0], "{flags:?}: validation loss did not fall: {val:?}");
        let m = read_json(&out.join("model.json"));
        assert_eq!(
            m["model"]["activation"],
            flags[1 + flags.iter().position(|f| *f == "--activation").unwrap()]
        );
    }
    // Cosine: the learning rate column follows lr·(1 + cos(π(e−1)/E))/2.
    let text = std::fs::read_to_string(dir.path().join("r1/metrics.csv")).unwrap();
    let lrs: Vec<f64> =
        text.lines().skip(1).map(|l| l.split(',').nth(5).unwrap().parse().unwrap()).collect();
    let expected: Vec<f64> = (0..3)
        .map(|e| 0.003 * 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / 3.0).cos()))
        .collect();
    assert!(
        lrs.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-12),
        "{lrs:?} vs {expected:?}"
    );
    let m = read_json(&dir.path().join("r0/model.json"));
    assert_eq!(m["train"]["loss"], "bce");
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    // A wide network on 300 images overfits: validation loss turns up after ~20 epochs.
    let cfg = TrainConfig {
        limit: Some(400),
        val_fraction: 0.25,
        batch_size: 16,
        lr: 0.003,
        epochs: 60,
        early_stop: Some(3),
        device: ae_tch::config::DeviceSpec::Cpu,
        ..Default::default()
    };
    let (train_set, val_set) = data::training_sets(&mnist(), &cfg, &Default::default()).unwrap();
    let model_cfg = ModelConfig {
        input: ae_tch::data::spec::DataSpec::Image(train_set.shape.clone()),
        layers: Layers::Mlp { hidden: vec![512], tied_weights: false },
        latent: 64,
        activation: Activation::Relu,
        variational: false,
        head: None,
        residual: false,
    };
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Autoencoder::new(&vs.root(), &model_cfg);
    let source = |rows: &data::ImageSet| data::batch::Source::Tensor(rows.to_device(Device::Cpu));
    let (train_t, val) = (source(&train_set), source(&val_set));
    let fit = train::fit(
        &model,
        &vs,
        train::Data { train: &train_t, val: Some(&val), inputs: None },
        &cfg,
        None,
        None,
        &mut |_| Ok(()),
    )
    .unwrap();
    let (best_epoch, best_loss) = fit.best.unwrap();
    let last = fit.history.last().unwrap();
    assert!(fit.stopped_early && last.epoch < 60, "did not stop early: {} epochs", last.epoch);
    assert_eq!(
        last.epoch,
        best_epoch + 3,
        "stops after exactly PATIENCE epochs without a better loss"
    );
    assert!(last.val_loss.unwrap() > best_loss);
    // The weights left in the model are the best epoch's, not the last one's.
    let v = val_set.to_unit(Device::Cpu);
    assert_eq!(metrics::mean_loss(&model, &v, &v, Loss::Mse), best_loss);

    // Through the CLI, the outcome records it.
    let dir = tempdir();
    let out = dir.path().join("es");
    let flags = [
        "--limit",
        "400",
        "--val-fraction",
        "0.25",
        "--batch-size",
        "16",
        "--lr",
        "0.003",
        "--hidden",
        "512",
        "--latent",
        "64",
        "--epochs",
        "60",
        "--early-stop",
        "3",
    ];
    let run = ae(dir.path(), &quick_train(&mnist(), &out, &flags)).ok();
    assert!(run.stderr.contains("early stop after epoch"), "{}", run.stderr);
    let outcome = read_json(&out.join("model.json"))["outcome"].clone();
    assert_eq!(outcome["stopped_early"], true);
    assert_eq!(
        outcome["epochs_run"].as_u64().unwrap(),
        outcome["best_epoch"].as_u64().unwrap() + 3
    );
}

#[test]
fn impossible_option_combinations_are_named() {
    let dir = tempdir();
    let out = dir.path().join("x");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--mode", "denoise", "--noise", "masking", "--noise-level", "1.5"],
            "is a probability for masking noise",
        ),
        (&["--early-stop", "2", "--val-fraction", "0"], "--early-stop needs validation images"),
        (&["--grad-clip", "0"], "--grad-clip must be a positive number"),
        (&["--loss", "hinge"], "invalid value 'hinge'"),
    ];
    for (flags, needle) in cases {
        ae(dir.path(), &quick_train(&mnist(), &out, flags)).fails_with(&[needle]);
    }
}

#[test]
fn every_arch_trains_in_both_modes_and_reloads_to_identical_outputs() {
    let dir = tempdir();
    let archs: [&[&str]; 5] = [
        &["--arch", "mlp"],
        &["--arch", "mlp", "--tied-weights"],
        &["--arch", "conv", "--channels", "8,16"],
        &["--arch", "vae", "--beta", "0.5"],
        &["--arch", "vae", "--backbone", "conv", "--channels", "8,16"],
    ];
    for (i, arch) in archs.iter().enumerate() {
        for mode in ["reconstruct", "denoise"] {
            let name = format!("a{i}-{mode}");
            let out = dir.path().join(&name);
            let mut flags = vec!["--mode", mode, "--epochs", "2", "--limit", "1000"];
            flags.extend_from_slice(arch);
            ae(dir.path(), &quick_train(&mnist(), &out, &flags)).ok();
            let val = val_losses(&out);
            assert!(val[1] < val[0], "{arch:?} {mode}: validation loss did not fall: {val:?}");
            let m = read_json(&out.join("model.json"));
            let eval = ae(
                dir.path(),
                &["eval", "--threads", "1", "--device", "cpu", "--run", &name, "--json"],
            )
            .ok();
            let measured: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
            assert_eq!(
                measured, m["outcome"]["test"],
                "{arch:?} {mode}: reload changed the outputs"
            );
            if arch.contains(&"vae") {
                let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
                let kl: f64 =
                    csv.lines().nth(1).unwrap().split(',').nth(7).unwrap().parse().unwrap();
                assert!(kl > 0.0, "{arch:?}: KL column {kl}");
            }
        }
        // Every command works on every arch.
        let run = format!("a{i}-denoise");
        ae(
            dir.path(),
            &[
                "interpolate",
                "--run",
                &run,
                "--from",
                "0",
                "--to",
                "5",
                "--steps",
                "6",
                "-o",
                &format!("{run}.png"),
            ],
        )
        .ok();
        ae(dir.path(), &["encode", "--run", &run, "-o", &format!("{run}.csv")]).ok();
        ae(dir.path(), &["grid", "--run", &run, "-n", "3", "-o", &format!("{run}-grid.png")]).ok();
    }
    ae(dir.path(), &["sample", "--run", "a3-reconstruct", "-n", "20", "-o", "s.png"]).ok();
    let img = image::open(dir.path().join("s.png")).unwrap();
    let mut layout = ae_tch::plot::GridLayout::new(2, 10, 28, 28);
    layout.label_w = 0;
    assert_eq!((img.width(), img.height()), layout.size());
    ae(dir.path(), &["sample", "--run", "a0-reconstruct", "-o", "s.png"])
        .fails_with(&["sample draws from a VAE's prior", "mlp run"]);
    ae(
        dir.path(),
        &["interpolate", "--run", "a0-reconstruct", "--from", "0", "--to", "5000", "-o", "p.png"],
    )
    .fails_with(&["--to 5000: the test split has 2000 images"]);
}

#[test]
fn conv_trains_on_a_folder_of_non_28_images() {
    let dir = tempdir();
    let data = dir.path().join("small");
    let test =
        ae_tch::data::load_split(&mnist(), ae_tch::data::Split::Test, &Default::default()).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..400 {
        let img = image::GrayImage::from_raw(28, 28, test.values[i * 784..(i + 1) * 784].to_vec())
            .unwrap();
        let small = image::imageops::resize(&img, 18, 18, image::imageops::FilterType::Triangle);
        small.save(data.join(format!("{i:03}.png"))).unwrap();
    }
    let out = dir.path().join("conv18");
    ae(
        dir.path(),
        &quick_train(&data, &out, &["--arch", "conv", "--channels", "8,16", "--epochs", "3"]),
    )
    .ok();
    let m = read_json(&out.join("model.json"));
    assert_eq!(
        (m["model"]["input"]["height"].as_i64(), m["model"]["layers"]["kind"].as_str()),
        (Some(18), Some("conv"))
    );
    // Convolutional layers start from torch.nn's initialisation unless --init says otherwise.
    assert_eq!(m["train"]["init"], "torch");
    let val = val_losses(&out);
    assert!(val[2] < val[0], "{val:?}");
}

#[test]
fn options_that_do_not_fit_the_arch_are_refused() {
    let dir = tempdir();
    let out = dir.path().join("x");
    // One rule for every flag that only some runs use: refused as bad usage (exit 2),
    // never trained around, and nothing is written.
    let cases: [(&[&str], &str); 9] = [
        (&["--beta", "2"], "--beta applies to --arch vae only"),
        (&["--arch", "conv", "--tied-weights"], "--tied-weights works with --arch mlp only"),
        (&["--arch", "conv", "--channels", "0"], "--channels must be between 1 and 4096"),
        (&["--sigma", "0.5"], "--noise-level (--sigma) applies to --mode denoise only"),
        (&["--noise", "masking"], "--noise applies to --mode denoise only"),
        (&["--arch", "conv", "--hidden", "64"], "--hidden sets MLP layers"),
        (&["--arch", "vae", "--backbone", "conv", "--hidden", "64"], "--hidden sets MLP layers"),
        (&["--arch", "vae", "--blocks", "2"], "--blocks sets conv layers"),
        (&["--backbone", "conv"], "--backbone applies to --arch vae only"),
    ];
    for (flags, needle) in cases {
        let run = ae(dir.path(), &quick_train(&mnist(), &out, flags)).fails_with(&[needle]);
        assert_eq!(run.code, Some(2), "{flags:?}");
        assert!(!out.exists(), "{flags:?} left {}", out.display());
    }
}
