//! `export -o model.pt`: the whole autoencoder as TorchScript, loaded by the venv's PyTorch
//! with no model code (`torch.jit.load`), giving ae-tch's own outputs; and `eval --model`
//! reads the file back.

use crate::util::*;
use ae_tch::run_store::RunDir;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::nn::Module;
use tch::{Device, Tensor};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exports `run` as TorchScript and has PyTorch run it on 64 of the run's test rows;
/// returns what the client reports.
fn check_in_pytorch(d: &Path, run: &Path) -> serde_json::Value {
    let pt = run.with_extension("pt");
    ae(d, &["export", "--run", s(run), "-o", s(&pt)]).ok();
    let dir = RunDir::open(run).unwrap();
    let (manifest, _vs, model) = dir.load_model(Device::Cpu).unwrap();
    let rows = ae_tch::commands::split_rows(
        &manifest,
        (None, Default::default()),
        ae_tch::data::Split::Test,
    )
    .unwrap();
    let x = rows.to_unit(Device::Cpu).narrow(0, 0, 64);
    let (y, z) = tch::no_grad(|| (model.forward(&x), model.encode(&x)));
    let dec = tch::no_grad(|| model.decode(&z));
    let reference: PathBuf =
        d.join(format!("{}.safetensors", run.file_name().unwrap().to_string_lossy()));
    let named = [("x", &x), ("y", &y), ("z", &z), ("d", &dec)];
    Tensor::write_safetensors(&named.map(|(n, t)| (n, t.contiguous())), &reference).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/clients/torchscript_client.py"))
        .args([&pt, &reference])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap()
}

/// An MLP, a colour conv model, a VAE and a vector run: PyTorch's forward, encode and
/// decode of the .pt equal ae-tch's to 1e-5, and the module says how to call it.
#[test]
fn torchscript_export_runs_in_pytorch_as_in_ae_tch() {
    let dir = tempdir();
    let d = dir.path();
    let emoji = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/emoji");
    let shuttle = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/shuttle/shuttle.csv");
    let runs: [(&str, Vec<String>); 4] = [
        ("mlp", quick_train(&mnist(), &d.join("mlp"), &["--epochs", "1"])),
        ("vae", quick_train(&mnist(), &d.join("vae"), &["--epochs", "1", "--arch", "vae"])),
        (
            "conv",
            quick_train(
                &emoji,
                &d.join("conv"),
                &[
                    "--epochs", "1", "--arch", "conv", "--color", "rgb", "--resize", "32x32",
                    "--limit", "200",
                ],
            ),
        ),
        (
            "vec",
            quick_train(
                &shuttle,
                &d.join("vec"),
                &[
                    "--epochs",
                    "1",
                    "--hidden",
                    "16",
                    "--latent",
                    "4",
                    "--limit",
                    "2000",
                    "--label-column",
                    "class",
                ],
            ),
        ),
    ];
    for (name, args) in &runs {
        ae(d, args).ok();
        let report = check_in_pytorch(d, &d.join(name));
        let diff = report["max_abs_diff"].as_f64().unwrap();
        eprintln!("{name}: {}", report["diffs"]);
        assert!(diff <= 1e-5, "{name}: {report}");
        let layout = report["layout"].as_str().unwrap();
        let want = match *name {
            "conv" => "[N, 3, 32, 32]",
            "vec" => "in model.input.columns order, scaled as model.input.scaling says",
            _ => "[N, 1, 28, 28]",
        };
        assert!(layout.contains(want), "{name}: {layout}");
    }
    // ae-tch reads the file back: eval with it reports what eval with the weights does.
    let plain = ae(d, &["eval", "--run", "mlp", "--json", "--threads", "1"]).ok().stdout;
    let script = ae(d, &["eval", "--run", "mlp", "--model", "mlp.pt", "--json", "--threads", "1"]);
    assert_eq!(script.ok().stdout, plain);
    ae(d, &["eval", "--run", "mlp", "--model", "conv.pt"]).fails_with(&["conv.pt", "[N, 784]"]);
    ae(d, &["eval", "--run", "mlp", "--model", "mlp/model.ot"]).fails_with(&["model.ot"]);
}
