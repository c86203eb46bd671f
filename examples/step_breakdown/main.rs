//! Where one training step goes, part by part. Not a test; run by `scripts/bench.sh
//! --breakdown`:
//!
//! ```sh
//! cargo run --release --example step_breakdown -- [--workload w1|w2] [--precision fp32|bf16]
//!     [--threads 2] [--steps 400]
//! ```
//!
//! W1 (Fashion-MNIST, MLP 784-256-64-16 mirrored, ReLU, sigmoid output, MSE, denoising
//! σ 0.3, batch 128, AdamW 1e-3; fp32): the loop's own parts (batch assembly, forward and
//! backward, reading the loss, the optimiser) timed over real steps, then every operation
//! of the hand-written step timed alone at W1's shapes, with each matrix product's
//! GFLOP/s. W2 (the default conv network on data/mnist): see `conv.rs`.
mod conv;

use ae_tch::config::{Layers, Mode, ModelConfig, NoiseKind, TrainConfig};
use ae_tch::data::batch::{Batcher, Source};
use ae_tch::data::spec::ImageRequest;
use ae_tch::data::{load_split, Split};
use ae_tch::mlp_step::{backward_with_bias, bias_relu, mse_after_sigmoid, MlpStep, BLOCK_ROWS};
use ae_tch::model::init::torch_init;
use ae_tch::model::Autoencoder;
use ae_tch::optim::FlatAdam;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

const WIDTHS: [i64; 7] = [784, 256, 64, 16, 64, 256, 784];

/// The value after `name` on the command line, or `default`.
fn arg_text(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name);
    i.and_then(|i| args.get(i + 1)).map_or(default.to_string(), |v| v.clone())
}

fn arg(name: &str, default: usize) -> usize {
    let v = arg_text(name, &default.to_string());
    v.parse().unwrap_or_else(|_| panic!("{name} takes a number, not {v}"))
}

/// Median seconds of `f` over `reps` calls, after a few unmeasured ones.
fn median_time(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..5).for_each(|_| f());
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

/// The x86 vector extensions this CPU offers (what the AVX2/AVX-512 paths choose from).
fn vector_extensions() -> String {
    let mut have = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let known = [
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx512f", has!("avx512f")),
            ("avx512bw", has!("avx512bw")),
            ("avx512vl", has!("avx512vl")),
            ("avx512bf16", has!("avx512bf16")),
        ];
        have.extend(known.iter().filter(|k| k.1).map(|k| k.0));
    }
    format!("vector extensions: {}", if have.is_empty() { "none".into() } else { have.join(" ") })
}

/// The mean seconds a step of each part of `step` over `steps` real steps, after `steps / 4`
/// unmeasured ones. `step(batches, s)` takes step `s` of the epoch (full batches only, a new
/// epoch's order after the last) and returns the instants that start and end its parts.
fn time_parts(
    batches: &mut Batcher,
    steps: usize,
    mut step: impl FnMut(&mut Batcher, usize) -> anyhow::Result<Vec<Instant>>,
) -> anyhow::Result<Vec<f64>> {
    let warm = steps / 4;
    let mut parts = Vec::new();
    batches.start_epoch(1);
    let per_epoch = batches.steps() - 1;
    for i in 0..warm + steps {
        let (epoch, s) = (1 + i / per_epoch, i % per_epoch);
        if s == 0 && i > 0 {
            batches.start_epoch(epoch);
        }
        let t = step(batches, s)?;
        parts.resize(t.len() - 1, 0.0);
        if i >= warm {
            for (p, w) in parts.iter_mut().zip(t.windows(2)) {
                *p += (w[1] - w[0]).as_secs_f64() / steps as f64;
            }
        }
    }
    Ok(parts)
}

fn row(name: &str, seconds: f64, flops: Option<f64>, step: f64) {
    let rate = flops.map_or(String::new(), |f| format!("{:>9.1}", f / seconds / 1e9));
    println!("  {name:<44}{:>9.1}{:>8.1}%{rate}", seconds * 1e6, 100.0 * seconds / step);
}

fn main() -> anyhow::Result<()> {
    ae_tch::host::keep_freed_memory();
    ae_tch::fpu::flush_denormals();
    let threads = arg("--threads", 2);
    let steps = arg("--steps", 400);
    tch::set_num_threads(threads as i32);
    let kind = match arg_text("--precision", "fp32").as_str() {
        "fp32" => Kind::Float,
        "bf16" => Kind::BFloat16,
        other => anyhow::bail!("--precision takes fp32 or bf16, not {other}"),
    };
    match arg_text("--workload", "w1").as_str() {
        "w1" if kind == Kind::Float => w1(threads, steps),
        "w1" => anyhow::bail!("the W1 breakdown is fp32 only"),
        "w2" => conv::run(threads, steps.min(100), kind, &vector_extensions()),
        other => anyhow::bail!("--workload takes w1 or w2, not {other}"),
    }
}

/// W1's breakdown.
fn w1(threads: usize, steps: usize) -> anyhow::Result<()> {
    let data_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let images = load_split(&data_dir, Split::Train, &ImageRequest::default())?;
    let data = images.to_device(Device::Cpu);

    let model = ModelConfig {
        layers: Layers::Mlp { hidden: vec![256, 64], tied_weights: false },
        latent: 16,
        ..Default::default()
    };
    let train = TrainConfig {
        mode: Mode::Denoise,
        noise: NoiseKind::Gaussian,
        noise_level: 0.3,
        batch_size: 128,
        lr: 1e-3,
        weight_decay: 0.0,
        ..Default::default()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Autoencoder::new(&vs.root(), &model);
    torch_init(&vs);
    let mut opt = FlatAdam::new(&vs, train.lr, train.weight_decay);
    let mut step = MlpStep::new(&vs, &model, &train, &opt, 128).expect("W1 is a plain MLP");
    let mut batches = Batcher::new(&Source::Tensor(data.shallow_clone()), 128, &train, false);

    let parts = time_parts(&mut batches, steps, |batches, s| {
        let t0 = Instant::now();
        let (x, input) = batches.get(s);
        let t1 = Instant::now();
        let loss = step.forward_backward(&input, &x);
        let t2 = Instant::now();
        let value = loss.double_value(&[]);
        let t3 = Instant::now();
        opt.apply(None).map_err(|n| anyhow::anyhow!("gradient norm {n}"))?;
        anyhow::ensure!(value.is_finite(), "the loss is {value}");
        Ok(vec![t0, t1, t2, t3, Instant::now()])
    })?;
    let total: f64 = parts.iter().sum();
    let cpu = vector_extensions();
    println!("W1 step on cpu, {threads} thread(s), batch 128, {steps} steps; {cpu}");
    println!(
        "  {:<44}{:>9}{:>9}{:>9}",
        "part (mean per step over real steps)", "µs", "share", "GFLOP/s"
    );
    let names =
        ["batch assembly (gather, noise, clamp)", "forward + backward", "loss read", "AdamW"];
    for (name, t) in names.iter().zip(parts) {
        row(name, t, None, total);
    }
    row("step", total, None, total);
    println!("  = {:.0} samples/s", 128.0 / total);

    mlp_operations(&mut opt, &mut batches);
    Ok(())
}

/// Each operation of W1's hand-written step alone, at W1's shapes (median of reps).
fn mlp_operations(opt: &mut FlatAdam, batches: &mut Batcher) {
    let reps = 200;
    let f = (Kind::Float, Device::Cpu);
    let b = 128;
    let acts: Vec<Tensor> = WIDTHS.iter().map(|&w| Tensor::rand([b, w], f)).collect();
    let deltas: Vec<Tensor> = WIDTHS.iter().map(|&w| Tensor::randn([b, w], f)).collect();
    println!("\n  {:<44}{:>9}{:>9}{:>9}", "operation (median, alone)", "µs", "share", "GFLOP/s");
    let mut ops = Vec::new();
    let host = |t: &Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).expect("f32");
    let mut partial = vec![0f32; (b as usize).div_ceil(BLOCK_ROWS) * 784];
    for l in 0..6 {
        let (i, o) = (WIDTHS[l], WIDTHS[l + 1]);
        let (w, bias) = (Tensor::randn([o, i], f) * 0.05, Tensor::zeros([o], f));
        let gw = Tensor::zeros([o, i], f);
        let (a, out, d) = (&acts[l], &acts[l + 1], &deltas[l + 1]);
        let din = &deltas[l];
        let gemm = 2.0 * (b * i * o) as f64;
        // As the step computes each layer (see mlp_step.rs): a ReLU layer's product alone
        // and then its bias and ReLU in one pass; the code and output layers by addmm.
        let (relu, sigmoid) = (l != 2 && l != 5, l == 5);
        let (mut y, bv, mut g, mut gb) = (host(out), host(&bias), host(d), vec![0f32; o as usize]);
        if relu {
            let t = median_time(reps, || {
                let _ = a.mm_out(out, &w.tr());
            });
            ops.push((format!("L{l} forward mm {b}x{i} · {i}x{o}"), t, Some(gemm)));
            let t = median_time(reps, || bias_relu(&mut y, &bv));
            ops.push((format!("L{l} forward bias + relu [{b}x{o}]"), t, None));
        } else {
            let t = median_time(reps, || {
                let _ = bias.addmm_out(out, a, &w.tr());
            });
            ops.push((format!("L{l} forward addmm {b}x{i} · {i}x{o}"), t, Some(gemm)));
        }
        if sigmoid {
            let mut o2 = out.copy();
            let t = median_time(reps, || {
                let _ = o2.sigmoid_();
            });
            ops.push((format!("L{l} forward sigmoid_ [{b}x{o}]"), t, None));
            let (y, target) = (host(out), host(&acts[0]));
            let t = median_time(reps, || {
                mse_after_sigmoid(&y, &target, &mut g, &mut gb, &mut partial);
            });
            ops.push((format!("MSE, its gradient, bias gradient [{b}x{o}]"), t, None));
        } else {
            let relu_out = relu.then(|| host(out));
            let t = median_time(reps, || {
                backward_with_bias(relu_out.as_deref(), &mut g, &mut gb, &mut partial);
            });
            let what = if relu { "backward relu + bias gradient" } else { "bias gradient" };
            ops.push((format!("L{l} {what} [{b}x{o}]"), t, None));
        }
        let t = median_time(reps, || {
            let _ = d.tr().mm_out(&gw, a);
        });
        ops.push((format!("L{l} grad W  {o}x{b} · {b}x{i}"), t, Some(gemm)));
        if l > 0 {
            let t = median_time(reps, || {
                let _ = d.mm_out(din, &w);
            });
            ops.push((format!("L{l} grad in {b}x{o} · {o}x{i}"), t, Some(gemm)));
        }
    }
    let n = opt.len() as usize;
    let t = median_time(reps, || opt.apply(None).expect("finite"));
    ops.push((format!("AdamW over {n} parameters"), t, None));
    let t = median_time(reps, || drop(batches.get(0)));
    ops.push(("batch assembly (gather, noise, clamp)".into(), t, None));
    let sum: f64 = ops.iter().map(|o| o.1).sum();
    let gemm: f64 = ops.iter().filter(|o| o.2.is_some()).map(|o| o.1).sum();
    let flops: f64 = ops.iter().filter_map(|o| o.2).sum();
    for (name, t, fl) in &ops {
        row(name, *t, *fl, sum);
    }
    row("sum of the operations", sum, None, sum);
    row("of which matrix products", gemm, Some(flops), sum);
}
