//! Reconstruction losses on tensors: the mean loss, the loss of each row, and the trimmed
//! loss (`--trim`) that leaves out a batch's worst rows; shared by the autograd step in
//! `train` and the hand-written step in `mlp_step`.

use crate::config::Loss;
use tch::{Kind, Reduction, Tensor};

/// The reconstruction loss of `output` against `target`, averaged over elements.
pub fn reconstruction(output: &Tensor, target: &Tensor, loss: Loss) -> Tensor {
    match loss {
        Loss::Mse => output.mse_loss(target, Reduction::Mean),
        Loss::Bce => cross_entropy(output, target, Reduction::Mean),
    }
}

/// torch's binary cross-entropy of each value (`reduction`), fed only values in [0, 1]:
/// libtorch's kernel fails on anything else, which a diverging run's NaN outputs are. Those
/// are replaced for the kernel, and the loss is made NaN by adding 0 · the outputs' sum,
/// so the divergence guard reports it; the gradient is torch's wherever the outputs are.
fn cross_entropy(output: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    let kernel_safe = output.nan_to_num(0.5, 1.0, 0.0).clamp(0.0, 1.0);
    let nan_if_any = output.sum(output.kind()) * 0.0;
    kernel_safe.binary_cross_entropy::<Tensor>(target, None, reduction) + nan_if_any
}

/// Per-row reconstruction loss (mean over each row's values).
pub fn per_row(output: &Tensor, target: &Tensor, loss: Loss) -> Tensor {
    let each = match loss {
        Loss::Mse => output.mse_loss(target, Reduction::None),
        Loss::Bce => cross_entropy(output, target, Reduction::None),
    };
    each.flatten(1, -1).mean_dim(1, false, Kind::Float)
}

/// The rows of a batch that count in the trimmed loss: the `kept` best reconstructed, as
/// a 0/1 mask of the same shape as `row_losses`.
pub fn kept_mask(row_losses: &Tensor, kept: i64) -> Tensor {
    let (_, keep) = row_losses.detach().topk(kept, 0, false, false);
    row_losses.detach().zeros_like().index_fill(0, &keep, 1.0)
}

/// The mean loss of the rows `kept_mask` keeps: the worst `--trim` share of the batch
/// (by its own reconstruction error) neither counts nor trains.
pub fn trimmed(output: &Tensor, target: &Tensor, loss: Loss, trim: f64) -> Tensor {
    let rows = per_row(output, target, loss);
    let kept = kept_rows(rows.size()[0], trim);
    (rows.shallow_clone() * kept_mask(&rows, kept)).sum(Kind::Float) / kept as f64
}

/// Rows of a batch of `n` that count in a loss trimmed by `trim` (`--trim`): all but the
/// worst `trim` share, at least one.
pub fn kept_rows(n: i64, trim: f64) -> i64 {
    (n - (n as f64 * trim).round() as i64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_is_torchs_and_a_nan_output_gives_a_nan_loss() {
        let output = Tensor::from_slice(&[0.0f32, 0.2, 0.5, 0.9, 1.0, 1e-30]).view([2, 3]);
        let target = Tensor::from_slice(&[0.0f32, 1.0, 0.3, 0.9, 0.0, 1.0]).view([2, 3]);
        let torch = output.binary_cross_entropy::<Tensor>(&target, None, Reduction::None);
        let ours = per_row(&output, &target, Loss::Bce);
        assert!(ours.allclose(&torch.mean_dim(1, false, Kind::Float), 1e-6, 1e-6, false));
        let mean = reconstruction(&output, &target, Loss::Bce);
        let torch_mean = output.binary_cross_entropy::<Tensor>(&target, None, Reduction::Mean);
        assert!(mean.allclose(&torch_mean, 1e-6, 1e-6, false), "{mean} against {torch_mean}");
        // The same gradient as torch's.
        let a = output.copy().set_requires_grad(true);
        reconstruction(&a, &target, Loss::Bce).backward();
        let b = output.copy().set_requires_grad(true);
        b.binary_cross_entropy::<Tensor>(&target, None, Reduction::Mean).backward();
        assert!(
            a.grad().allclose(&b.grad(), 1e-6, 1e-6, false),
            "{} against {}",
            a.grad(),
            b.grad()
        );
        // Where torch's kernel would fail, a NaN loss.
        let nan = Tensor::from_slice(&[f32::NAN, 0.5]);
        let loss = reconstruction(&nan, &Tensor::from_slice(&[0.5f32, 0.5]), Loss::Bce);
        assert!(loss.double_value(&[]).is_nan());
        let rows =
            per_row(&nan.view([1, 2]), &Tensor::from_slice(&[0.5f32, 0.5]).view([1, 2]), Loss::Bce);
        assert!(rows.double_value(&[0]).is_nan());
    }
}
