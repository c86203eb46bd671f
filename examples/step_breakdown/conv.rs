//! Where one W2 step goes: the default conv network (channels 32, 64, one residual block
//! per level, GroupNorm 8, ReLU, transposed convolutions) at k = 30 on data/mnist, batch
//! 128, squared error, Adam 1e-3, in fp32 or bf16 (`--precision bf16`: the network computes
//! on a bf16 copy of the fp32 master, as `ae-tch train --precision bf16` does). First the
//! loop's parts over real steps, then every operation of the network alone at W2's shapes,
//! forward and backward (through autograd, as the step runs them), grouped by kind.
use crate::{median_time, row, time_parts};
use ae_tch::config::{ConvLayers, Layers, Mode, ModelConfig, TrainConfig, Upsample};
use ae_tch::data::batch::{Batcher, Source};
use ae_tch::data::spec::ImageRequest;
use ae_tch::data::{load_split, Split};
use ae_tch::model::init::torch_init;
use ae_tch::model::Autoencoder;
use ae_tch::optim::FlatAdam;
use std::collections::HashMap;
use std::time::Instant;
use tch::{nn, Device, Kind, Reduction, Tensor};

const BATCH: i64 = 128;

/// W2's network and training settings.
fn w2() -> (ModelConfig, TrainConfig) {
    let conv =
        ConvLayers { channels: vec![32, 64], blocks: 1, groups: 8, upsample: Upsample::Transpose };
    let model = ModelConfig { layers: Layers::Conv(conv), latent: 30, ..Default::default() };
    let train = TrainConfig {
        mode: Mode::Reconstruct,
        batch_size: BATCH as usize,
        lr: 1e-3,
        weight_decay: 0.0,
        ..Default::default()
    };
    (model, train)
}

/// The loop's parts, mean seconds a step over `steps` real steps after `steps / 4`
/// unmeasured ones: batch assembly, the cast to bf16 (`lower`), forward with the loss,
/// backward, widening the gradients (`raise`), reading the loss, AdamW.
fn loop_parts(kind: Kind, steps: usize) -> anyhow::Result<(Vec<f64>, FlatAdam, Batcher)> {
    let data_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let images = load_split(&data_dir, Split::Train, &ImageRequest::default())?;
    let data = images.to_device(Device::Cpu);
    let (model, train) = w2();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Autoencoder::new(&vs.root(), &model);
    torch_init(&vs);
    let mut opt = FlatAdam::new(&vs, train.lr, train.weight_decay);
    if kind != Kind::Float {
        opt.compute_in(kind);
    }
    let mut batches = Batcher::new(&Source::Tensor(data), BATCH, &train, false);
    let parts = time_parts(&mut batches, steps, |batches, s| {
        let t0 = Instant::now();
        let (x, input) = batches.get(s);
        let t1 = Instant::now();
        opt.lower();
        let input = if kind == Kind::Float { input } else { input.to_kind(kind) };
        let t2 = Instant::now();
        let out = net.forward_train(&input).reconstruction.to_kind(Kind::Float);
        let loss = out.mse_loss(&x, Reduction::Mean);
        let t3 = Instant::now();
        opt.backward(&loss);
        let t4 = Instant::now();
        opt.raise();
        let t5 = Instant::now();
        let value = loss.double_value(&[]);
        let t6 = Instant::now();
        opt.apply(None).map_err(|n| anyhow::anyhow!("gradient norm {n}"))?;
        anyhow::ensure!(value.is_finite(), "the loss is {value}");
        Ok(vec![t0, t1, t2, t3, t4, t5, t6, Instant::now()])
    })?;
    Ok((parts, opt, batches))
}

/// One operation of the network at W2's shapes: how often a step runs it, its forward
/// and backward seconds (median, alone), and their FLOPs where it is a product.
struct Op {
    name: String,
    group: &'static str,
    count: usize,
    forward: f64,
    backward: f64,
    flops: Option<(f64, f64)>,
}

/// Times operations forward and, through autograd, backward. The backward is seeded by
/// `(y · g).sum()`; that seeding's own cost, measured on an identity of y's shape, is taken
/// off.
struct Timer {
    kind: Kind,
    reps: usize,
    seeding: HashMap<Vec<i64>, f64>,
}

impl Timer {
    fn tensor(&self, shape: &[i64], grad: bool) -> Tensor {
        let t = Tensor::rand(shape, (self.kind, Device::Cpu)) - 0.5;
        t.set_requires_grad(grad)
    }

    /// Median backward seconds of `y` into `inputs`, seeded by a fixed random gradient.
    fn backward(&self, y: &Tensor, inputs: &[&Tensor]) -> f64 {
        let g = Tensor::rand_like(y);
        let s = (y * g).sum(Kind::Float);
        let grads: Vec<&Tensor> = inputs.iter().copied().filter(|t| t.requires_grad()).collect();
        median_time(self.reps, || drop(Tensor::run_backward(&[&s], &grads, true, false)))
    }

    fn seeding(&mut self, shape: &[i64]) -> f64 {
        if let Some(&t) = self.seeding.get(shape) {
            return t;
        }
        let x = self.tensor(shape, true);
        let y = x.view(shape);
        let t = self.backward(&y, &[&x]);
        self.seeding.insert(shape.to_vec(), t);
        t
    }

    /// `f` over `inputs` (shapes, and whether each takes a gradient), `count` times a step.
    fn op(
        &mut self,
        (name, group, count): (String, &'static str, usize),
        inputs: &[(&[i64], bool)],
        flops: Option<(f64, f64)>,
        f: impl Fn(&[Tensor]) -> Tensor,
    ) -> Op {
        let ts: Vec<Tensor> = inputs.iter().map(|(s, g)| self.tensor(s, *g)).collect();
        let forward = median_time(self.reps, || drop(f(&ts)));
        let y = f(&ts);
        let refs: Vec<&Tensor> = ts.iter().collect();
        let backward = (self.backward(&y, &refs) - self.seeding(&y.size())).max(0.0);
        Op { name, group, count, forward, backward, flops }
    }
}

/// Every operation of W2's network, with how many of each a step runs.
fn operations(kind: Kind) -> Vec<Op> {
    let mut t = Timer { kind, reps: 30, seeding: HashMap::new() };
    let n = BATCH;
    let mut ops = Vec::new();
    // (in, out, stride, size in, input takes a gradient, count)
    let convs = [
        (1, 32, 2, 28, false, 1),
        (32, 32, 1, 14, true, 4),
        (32, 64, 2, 14, true, 1),
        (64, 64, 1, 7, true, 4),
    ];
    for (ci, co, s, hw, grad, count) in convs {
        let ho = hw / s;
        let f = 2.0 * (n * co * ho * ho * ci * 9) as f64;
        let name = format!("conv {ci}→{co} 3×3/{s}, {hw}×{hw}→{ho}×{ho}");
        let shapes: [&[i64]; 3] = [&[n, ci, hw, hw], &[co, ci, 3, 3], &[co]];
        let back = if grad { 2.0 * f } else { f };
        ops.push(t.op(
            (name, "convolutions", count),
            &[(shapes[0], grad), (shapes[1], true), (shapes[2], true)],
            Some((f, back)),
            move |x| x[0].conv2d(&x[1], Some(&x[2]), [s, s], [1, 1], [1, 1], 1),
        ));
    }
    for (ci, co, hw) in [(64, 32, 7), (32, 1, 14)] {
        let f = 2.0 * (n * ci * hw * hw * co * 9) as f64;
        let name = format!("transposed conv {ci}→{co} 3×3/2, {hw}×{hw}→{}×{}", 2 * hw, 2 * hw);
        let shapes: [&[i64]; 3] = [&[n, ci, hw, hw], &[ci, co, 3, 3], &[co]];
        ops.push(t.op(
            (name, "convolutions", 1),
            &[(shapes[0], true), (shapes[1], true), (shapes[2], true)],
            Some((f, 2.0 * f)),
            |x| x[0].conv_transpose2d(&x[1], Some(&x[2]), [2, 2], [1, 1], [1, 1], 1, [1, 1]),
        ));
    }
    for (c, hw, norms, acts) in [(32, 14, 6, 6), (64, 7, 5, 6)] {
        let shape: &[i64] = &[n, c, hw, hw];
        ops.push(t.op(
            (format!("GroupNorm 8 groups, {c}×{hw}×{hw}"), "GroupNorm", norms),
            &[(shape, true), (&[c], true), (&[c], true)],
            None,
            |x| x[0].group_norm(8, Some(&x[1]), Some(&x[2]), 1e-5, false),
        ));
        ops.push(t.op(
            (format!("ReLU {c}×{hw}×{hw}"), "activations", acts),
            &[(shape, true)],
            None,
            |x| x[0].relu(),
        ));
        ops.push(t.op(
            (format!("residual add {c}×{hw}×{hw}"), "residual adds", 2),
            &[(shape, true), (shape, true)],
            None,
            |x| &x[0] + &x[1],
        ));
    }
    for (i, o) in [(3136, 30), (30, 3136)] {
        let f = 2.0 * (n * i * o) as f64;
        ops.push(t.op(
            (format!("dense {i}→{o}"), "dense layers", 1),
            &[(&[n, i], true), (&[o, i], true), (&[o], true)],
            Some((f, 2.0 * f)),
            |x| x[0].linear(&x[1], Some(&x[2])),
        ));
    }
    ops.push(t.op(
        ("sigmoid 1×28×28".into(), "activations", 1),
        &[(&[n, 1, 28, 28], true)],
        None,
        |x| x[0].sigmoid(),
    ));
    let target = Tensor::rand([n, 784], (Kind::Float, Device::Cpu));
    ops.push(t.op(
        ("squared error (fp32) of 784 values".into(), "loss", 1),
        &[(&[n, 784], true)],
        None,
        move |x| x[0].to_kind(Kind::Float).mse_loss(&target, Reduction::Mean),
    ));
    ops
}

/// Prints the loop's parts and every operation alone.
pub fn run(threads: usize, steps: usize, kind: Kind, cpu: &str) -> anyhow::Result<()> {
    let precision = if kind == Kind::Float { "fp32" } else { "bf16" };
    let (parts, mut opt, mut batches) = loop_parts(kind, steps)?;
    let total: f64 = parts.iter().sum();
    println!(
        "W2 step on cpu, {precision}, {threads} thread(s), batch {BATCH}, {steps} steps; {cpu}"
    );
    println!("  {:<44}{:>9}{:>9}", "part (mean per step over real steps)", "µs", "share");
    let names = [
        "batch assembly (gather, scale)",
        "weights and input to bf16 (lower)",
        "forward and loss",
        "backward",
        "gradients to fp32 (raise)",
        "loss read",
        "AdamW",
    ];
    for (name, t) in names.iter().zip(parts) {
        if kind != Kind::Float || !name.contains("bf16") && !name.contains("raise") {
            row(name, t, None, total);
        }
    }
    row("step", total, None, total);
    println!("  = {:.0} samples/s", BATCH as f64 / total);

    let mut ops = operations(kind);
    let adam = median_time(30, || opt.apply(None).expect("finite"));
    let batch = median_time(30, || drop(batches.get(0)));
    let len = opt.len();
    ops.push(Op {
        name: format!("AdamW over {len} parameters"),
        group: "AdamW",
        count: 1,
        forward: adam,
        backward: 0.0,
        flops: None,
    });
    ops.push(Op {
        name: "batch assembly".into(),
        group: "batch assembly",
        count: 1,
        forward: batch,
        backward: 0.0,
        flops: None,
    });
    print_operations(&ops);
    Ok(())
}

fn print_operations(ops: &[Op]) {
    let sum: f64 = ops.iter().map(|o| o.count as f64 * (o.forward + o.backward)).sum();
    println!(
        "\n  {:<44}{:>3}{:>9}{:>9}{:>9}{:>8}{:>8}{:>8}",
        "operation (median alone, µs a call)",
        "×",
        "fwd",
        "bwd",
        "step µs",
        "share",
        "GF/s f",
        "GF/s b"
    );
    for o in ops {
        let rate =
            |f: f64, t: f64| if t > 0.0 { format!("{:>8.1}", f / t / 1e9) } else { String::new() };
        let rates =
            o.flops.map_or(String::new(), |(f, b)| rate(f, o.forward) + &rate(b, o.backward));
        let step = o.count as f64 * (o.forward + o.backward);
        println!(
            "  {:<44}{:>3}{:>9.0}{:>9.0}{:>9.0}{:>7.1}%{rates}",
            o.name,
            o.count,
            o.forward * 1e6,
            o.backward * 1e6,
            step * 1e6,
            100.0 * step / sum
        );
    }
    println!("\n  {:<44}{:>9}{:>9}{:>9}", "by kind (a step)", "fwd µs", "bwd µs", "share");
    let mut groups: Vec<&str> = Vec::new();
    for o in ops {
        if !groups.contains(&o.group) {
            groups.push(o.group);
        }
    }
    for g in groups {
        let of = ops.iter().filter(|o| o.group == g);
        let f: f64 = of.clone().map(|o| o.count as f64 * o.forward).sum();
        let b: f64 = of.map(|o| o.count as f64 * o.backward).sum();
        println!("  {g:<44}{:>9.0}{:>9.0}{:>8.1}%", f * 1e6, b * 1e6, 100.0 * (f + b) / sum);
    }
    println!("  {:<44}{:>27.0}", "sum of the operations", sum * 1e6);
}
