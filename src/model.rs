//! The autoencoder: encoder f_θ and decoder g_φ as tch `nn::Sequential`s, built from a
//! `ModelConfig` alone.
//!
//! Variable names follow the equivalent `torch.nn.Sequential`: in
//! `Linear, ReLU, Linear, ReLU, Linear` the linear layers sit at positions 0, 2 and 4, so
//! the weights are `encoder.0.weight`, `encoder.2.weight`, … as a PyTorch state dict would
//! name them.

use crate::config::{Activation, ModelConfig};
use tch::nn::{self, Module};
use tch::Tensor;

#[derive(Debug)]
pub struct Autoencoder {
    pub encoder: nn::Sequential,
    pub decoder: nn::Sequential,
}

impl Autoencoder {
    /// Builds the network's variables under `vs / "encoder"` and `vs / "decoder"`.
    /// `config` must have passed `ModelConfig::validate`.
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> Self {
        let widths = config.encoder_widths();
        let encoder = mlp(&(vs / "encoder"), &widths, config.activation, Output::Linear);
        let reversed: Vec<i64> = widths.iter().rev().copied().collect();
        let decoder = mlp(&(vs / "decoder"), &reversed, config.activation, Output::Sigmoid);
        Autoencoder { encoder, decoder }
    }

    /// `x`: `[N, height*width]` in [0, 1] → code `z`: `[N, latent]`.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        self.encoder.forward(x)
    }

    /// `z`: `[N, latent]` → `[N, height*width]` in (0, 1).
    pub fn decode(&self, z: &Tensor) -> Tensor {
        self.decoder.forward(z)
    }
}

impl Module for Autoencoder {
    /// `x`: `[N, height*width]` → reconstruction `x̂`: `[N, height*width]`.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.decode(&self.encode(x))
    }
}

enum Output {
    /// The code is linear, as in PCA: no activation on the last layer.
    Linear,
    /// Pixels in (0, 1).
    Sigmoid,
}

/// `activation` as a tensor function.
fn activate(activation: Activation, x: &Tensor) -> Tensor {
    match activation {
        Activation::Relu => x.relu(),
        Activation::LeakyRelu => x.leaky_relu(),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => x.gelu("none"),
    }
}

/// Linear layers through `widths` with `activation` between them.
fn mlp(vs: &nn::Path, widths: &[i64], activation: Activation, output: Output) -> nn::Sequential {
    let mut seq = nn::seq();
    let last = widths.len() - 2;
    for (i, pair) in widths.windows(2).enumerate() {
        let name = (2 * i).to_string();
        seq = seq.add(nn::linear(vs / name.as_str(), pair[0], pair[1], Default::default()));
        if i < last {
            seq = seq.add_fn(move |x| activate(activation, x));
        }
    }
    match output {
        Output::Linear => seq,
        Output::Sigmoid => seq.add_fn(|x| x.sigmoid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;
    use tch::{Device, Kind};

    fn config(hidden: Vec<i64>) -> ModelConfig {
        ModelConfig {
            arch: Arch::Mlp,
            height: 28,
            width: 28,
            hidden,
            latent: 16,
            activation: Activation::Relu,
        }
    }

    #[test]
    fn shapes_follow_the_config() {
        let vs = nn::VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &config(vec![256, 64]));
        let x = Tensor::rand([5, 784], (Kind::Float, Device::Cpu));
        assert_eq!(ae.encode(&x).size(), vec![5, 16]);
        let y = ae.forward(&x);
        assert_eq!(y.size(), vec![5, 784]);
        assert!(y.min().double_value(&[]) > 0.0 && y.max().double_value(&[]) < 1.0);
    }

    #[test]
    fn variables_are_named_like_a_torch_sequential() {
        let vs = nn::VarStore::new(Device::Cpu);
        Autoencoder::new(&vs.root(), &config(vec![256, 64]));
        let mut shapes: Vec<(String, Vec<i64>)> =
            vs.variables().into_iter().map(|(k, v)| (k, v.size())).collect();
        shapes.sort();
        let expected = [
            ("decoder.0.bias", vec![64]),
            ("decoder.0.weight", vec![64, 16]),
            ("decoder.2.bias", vec![256]),
            ("decoder.2.weight", vec![256, 64]),
            ("decoder.4.bias", vec![784]),
            ("decoder.4.weight", vec![784, 256]),
            ("encoder.0.bias", vec![256]),
            ("encoder.0.weight", vec![256, 784]),
            ("encoder.2.bias", vec![64]),
            ("encoder.2.weight", vec![64, 256]),
            ("encoder.4.bias", vec![16]),
            ("encoder.4.weight", vec![16, 64]),
        ];
        let expected: Vec<(String, Vec<i64>)> =
            expected.into_iter().map(|(k, s)| (k.to_string(), s)).collect();
        assert_eq!(shapes, expected);
    }

    #[test]
    fn no_hidden_layers_is_a_linear_code() {
        let vs = nn::VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &config(vec![]));
        assert_eq!(vs.variables().len(), 4);
        let x = Tensor::rand([2, 784], (Kind::Float, Device::Cpu));
        assert_eq!(ae.forward(&x).size(), vec![2, 784]);
    }
}
