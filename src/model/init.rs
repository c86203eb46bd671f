//! How a network's weights start, beyond the layers' own initialisation: torch.nn's
//! ±1/√fan_in draws (`--init torch`), and the start at the training rows' mean
//! (`--start mean`).

use super::*;

/// Re-draws every weight matrix or kernel, and the bias beside it, uniformly in ±1/√fan_in with
/// fan_in = `weight.size(1)` × the kernel's area: what torch.nn's Linear, Conv2d and
/// ConvTranspose2d start from.
pub fn torch_init(vs: &nn::VarStore) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    tch::no_grad(|| {
        for name in names {
            let Some(stem) = name.strip_suffix(".weight").or_else(|| name.strip_suffix(".bias"))
            else {
                continue;
            };
            let Some(weight) = vars.get(&format!("{stem}.weight")) else { continue };
            let size = weight.size();
            if size.len() < 2 {
                continue; // a norm's scale and shift keep torch's 1 and 0
            }
            let fan_in: i64 = size.iter().skip(1).product();
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            let _ = vars[name].shallow_clone().uniform_(-bound, bound);
        }
    });
}

/// Makes the untrained network put out the mean of the training rows `rows` (`[N, D]` as
/// stored): the decoder's output layer gets zero weights (a tied decoder keeps the
/// encoder's) and as bias the mean — its logit under a sigmoid, per channel for a
/// convolutional decoder. A decoder whose output layer is not found so (no architecture
/// today) is an error rather than a start that silently stays random.
pub fn start_at_the_mean(
    vs: &nn::VarStore,
    config: &ModelConfig,
    rows: &crate::data::batch::Source,
) -> anyhow::Result<()> {
    let mean = rows.mean();
    let vars = vs.variables();
    // The output layer is the decoder's last numbered layer with a bias of its own
    // (`decoder.<i>.bias`, as torch.nn.Sequential names it; a residual block's biases sit
    // one level deeper).
    let index = |n: &str| match n.split('.').collect::<Vec<_>>()[..] {
        ["decoder", i, "bias"] => i.parse::<usize>().ok(),
        _ => None,
    };
    let last = vars.keys().filter_map(|n| Some((index(n)?, n))).max();
    let (c, h, w) = config.image_shape();
    let bias = last.map(|(_, name)| (name, &vars[name]));
    let (name, bias, target) = match bias {
        Some((name, b)) if b.size() == mean.size() => (name, b, mean),
        Some((name, b)) if b.size() == [c] => {
            let per_channel =
                mean.view([c, h * w]).mean_dim(Some([1i64].as_slice()), false, tch::Kind::Float);
            (name, b, per_channel)
        }
        _ => {
            let problem = format!(
                "mean: the {} decoder has no output layer to start at the mean",
                config.arch_name()
            );
            return Err(crate::invalid::Invalid::of("start", problem).into());
        }
    };
    let target = if config.residual {
        // A residual network adds its input: a zero output layer starts as the identity.
        target.zeros_like()
    } else if config.input.bounded() {
        let p = target.clamp(1e-3, 1.0 - 1e-3);
        let q: Tensor = p.ones_like() - &p;
        (&p / q).log()
    } else {
        target
    };
    tch::no_grad(|| {
        bias.shallow_clone().copy_(&target.to_device(bias.device()));
        if let Some(weight) = vars.get(&name.replace(".bias", ".weight")) {
            let _ = weight.shallow_clone().zero_();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, conv, residual};
    use super::*;
    use crate::data::batch::Source;
    use crate::data::spec::{Color, DataSpec, ImageSpec};
    use tch::Device;

    #[test]
    fn a_mean_start_puts_out_the_training_mean_before_any_step() {
        let _rng = crate::rng_lock();
        tch::manual_seed(3);
        let rows = Tensor::randint(256, [50, 784], (tch::Kind::Uint8, Device::Cpu));
        let mean = crate::data::to_unit_float(&rows).mean_dim(
            Some([0i64].as_slice()),
            false,
            tch::Kind::Float,
        );
        for tied in [false, true] {
            let cfg = ModelConfig {
                layers: Layers::Mlp { hidden: vec![32, 8], tied_weights: tied },
                ..Default::default()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let ae = Autoencoder::new(&vs.root(), &cfg);
            let before = vs.variables();
            let encoder_first = before["encoder.0.weight"].copy();
            start_at_the_mean(&vs, &cfg, &Source::Tensor(rows.shallow_clone())).unwrap();
            let out = tch::no_grad(|| ae.forward(&crate::data::to_unit_float(&rows)));
            let gap = (&out - mean.unsqueeze(0)).abs().max().double_value(&[]);
            // The mean's logit, clamped to [1e-3, 1 - 1e-3], back through the sigmoid; a
            // tied decoder keeps the encoder's matrices, so only its bias starts there.
            if !tied {
                assert!(gap < 1e-5, "untrained output off the mean by {gap}");
            }
            assert!(vs.variables()["encoder.0.weight"].equal(&encoder_first), "tied: {tied}");
        }
        // A convolutional decoder puts out each channel's mean, whatever its blocks.
        let input = DataSpec::Image(ImageSpec { color: Color::Rgb, ..ImageSpec::gray(8, 8) });
        let rows = Tensor::randint(256, [20, 192], (tch::Kind::Uint8, Device::Cpu));
        for cfg in [conv(vec![8, 16]), residual(vec![8, 16], Upsample::Resize)] {
            let cfg = ModelConfig { input: input.clone(), ..cfg };
            let vs = nn::VarStore::new(Device::Cpu);
            let ae = Autoencoder::new(&vs.root(), &cfg);
            start_at_the_mean(&vs, &cfg, &Source::Tensor(rows.shallow_clone())).unwrap();
            let out = tch::no_grad(|| ae.forward(&crate::data::to_unit_float(&rows)));
            let unit = crate::data::to_unit_float(&rows).view([20, 3, 64]);
            let want = unit.mean_dim(Some([0i64, 2].as_slice()), false, tch::Kind::Float);
            let got = out.view([20, 3, 64]);
            let gap = (got - want.view([1, 3, 1])).abs().max().double_value(&[]);
            assert!(gap < 1e-5, "{}: off the channel means by {gap}", cfg.arch_name());
        }
        // A decoder without a numbered output layer is refused, not left at random.
        let bare = nn::VarStore::new(Device::Cpu);
        let e = start_at_the_mean(&bare, &config(vec![4]), &Source::Tensor(rows.shallow_clone()))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--start mean: the mlp decoder has no output layer to start at the mean");
        // Scaled features: no sigmoid, the bias is the mean itself.
        let input = DataSpec::Vector(crate::data::spec::VectorSpec {
            columns: (0..6).map(|i| format!("x{i}")).collect(),
            label_column: None,
            classes: vec![],
            categories: vec![],
            scaling: crate::data::spec::Scaling::fit(
                crate::data::spec::ScaleKind::Standard,
                &[0.0; 6],
                6,
            ),
        });
        let cfg = ModelConfig { input, latent: 3, ..config(vec![4]) };
        let vs = nn::VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &cfg);
        let rows =
            Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0, 0.0, 1.0, 3.0, 2.0, 0.5, -1.0, 2.0, 1.0])
                .view([2, 6]);
        start_at_the_mean(&vs, &cfg, &Source::Tensor(rows.shallow_clone())).unwrap();
        let out = tch::no_grad(|| ae.forward(&rows));
        let want = Tensor::from_slice(&[2.0f32, 0.0, 0.5, 1.0, 1.0, 1.0]);
        assert!(out.get(1).allclose(&want, 1e-6, 1e-6, false), "{out}");
    }

    #[test]
    fn torch_init_draws_within_one_over_root_fan_in() {
        let _rng = crate::rng_lock();
        tch::manual_seed(4);
        let bases =
            [config(vec![256, 64]), conv(vec![32, 64]), residual(vec![32], Upsample::Resize)];
        for cfg in bases {
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = Autoencoder::new(&vs.root(), &cfg);
            torch_init(&vs);
            let vars = vs.variables();
            for (name, v) in &vars {
                let stem = name.rsplit_once('.').unwrap().0;
                if name.contains("norm") || vars[&format!("{stem}.weight")].dim() == 1 {
                    // GroupNorm keeps torch's scale 1 and shift 0.
                    let want = if name.ends_with("weight") { 1.0 } else { 0.0 };
                    assert!(v.eq(want).all().int64_value(&[]) == 1, "{name}");
                    continue;
                }
                let w = &vars[&format!("{stem}.weight")];
                let fan_in: i64 = w.size().iter().skip(1).product();
                let bound = 1.0 / (fan_in as f64).sqrt();
                let max = v.abs().max().double_value(&[]);
                assert!(max <= bound, "{name}: {max} > {bound}");
                if v.numel() > 1000 {
                    // Uniform on ±b has standard deviation b/√3.
                    let std = v.std(true).double_value(&[]);
                    assert!((std / (bound / 3f64.sqrt()) - 1.0).abs() < 0.05, "{name}: σ {std}");
                }
            }
        }
    }
}
