//! Principal component analysis with libtorch linear algebra: the linear baseline every
//! autoencoder is measured against, and the 2-D projection behind `plot-latent`.

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

/// Rows converted to f64 at a time while fitting.
const FIT_CHUNK: i64 = 4096;
/// Above this many values per row the `D × D` covariance is too large (128 MiB in f64 at
/// 4096, and its eigendecomposition too slow): the fit goes through the `N × N` Gram
/// matrix of at most `GRAM_ROWS` rows instead, evenly spread over the data.
pub const COVARIANCE_MAX_DIM: i64 = 4096;
pub const GRAM_ROWS: i64 = 4096;

/// The top-k principal subspace of a set of rows.
#[derive(Debug)]
pub struct Pca {
    /// `[D]` mean of the fitted rows.
    pub mean: Tensor,
    /// `[k, D]` orthonormal principal directions, largest variance first.
    pub components: Tensor,
    /// `[k]` variance along each component.
    pub variances: Tensor,
    /// How many rows the fit used (fewer than given for wide data, see `GRAM_ROWS`).
    pub fitted_rows: i64,
}

/// `x` as f64, u8 pixels scaled to [0, 1].
fn to_f64(x: &Tensor) -> Tensor {
    match x.kind() {
        Kind::Uint8 => x.to_kind(Kind::Double) / 255.0,
        _ => x.to_kind(Kind::Double),
    }
}

/// Hands each part of a set of rows to the callback, in order (`Pca::fit_parts`).
pub type TensorVisitor<'a> = &'a dyn Fn(&mut dyn FnMut(Tensor));

impl Pca {
    /// Fits the top `k` components of `x` (`[N, D]`: f32, or u8 pixels that are scaled to
    /// [0, 1]), mean-centred, through the eigendecomposition of the `D × D` covariance in
    /// f64. The rows are centred a chunk at a time, so the memory needed beyond
    /// `x` is the covariance, not a second copy of the data.
    pub fn fit(x: &Tensor, k: i64) -> Result<Pca> {
        let (n, d) = match x.size()[..] {
            [n, d] => (n, d),
            _ => bail!("PCA needs a 2-D matrix, got shape {:?}", x.size()),
        };
        if k < 1 || k > d || n < 2 {
            bail!("PCA with {k} components needs 1 ≤ k ≤ {d} and at least 2 rows (got {n})");
        }
        if d > COVARIANCE_MAX_DIM {
            return Self::fit_gram(x, k);
        }
        let visit = |each: &mut dyn FnMut(Tensor)| {
            (0..n)
                .step_by(FIT_CHUNK as usize)
                .for_each(|start| each(x.narrow(0, start, FIT_CHUNK.min(n - start))))
        };
        Self::fit_covariance(&visit, (n, d, x.device()), k)
    }

    /// `fit` on rows handed over in parts (`visit` gives each part, `[m, D]`, to its
    /// callback, the same parts in the same order each time it is called): `n` rows of
    /// `d` values on `device` in all, never more than one part in memory. Rows wider than
    /// the covariance takes are refused (`fit` takes them whole).
    pub fn fit_parts(
        visit: TensorVisitor<'_>,
        (n, d, device): (i64, i64, Device),
        k: i64,
    ) -> Result<Pca> {
        if k < 1 || k > d || n < 2 {
            bail!("PCA with {k} components needs 1 ≤ k ≤ {d} and at least 2 rows (got {n})");
        }
        if d > COVARIANCE_MAX_DIM {
            bail!("PCA of rows of {d} values is fitted on the rows held whole");
        }
        Self::fit_covariance(visit, (n, d, device), k)
    }

    /// The covariance fit of `fit` on the parts `visit` hands over.
    fn fit_covariance(
        visit: TensorVisitor<'_>,
        (n, d, device): (i64, i64, Device),
        k: i64,
    ) -> Result<Pca> {
        let (mean, cov) = tch::no_grad(|| {
            let opts = (Kind::Double, device);
            let mut sum = Tensor::zeros([d], opts);
            visit(&mut |c| sum += to_f64(&c).sum_dim_intlist(0, false, Kind::Double));
            let mean = sum / n as f64;
            let mut cov = Tensor::zeros([d, d], opts);
            // Each part's product runs in f32 (twice the speed of f64) on rows centred in
            // f64; the part sums are accumulated in f64.
            visit(&mut |c| {
                let centred = (to_f64(&c) - &mean).to_kind(Kind::Float);
                cov += centred.tr().matmul(&centred).to_kind(Kind::Double);
            });
            (mean, cov / (n - 1) as f64)
        });
        let (eigenvalues, eigenvectors) =
            cov.f_linalg_eigh("L").context("eigendecomposition of the covariance")?;
        // eigh sorts ascending: the last k columns, reversed, are the top components.
        let components = eigenvectors.narrow(1, d - k, k).flip([1]).tr().contiguous();
        let variances = eigenvalues.narrow(0, d - k, k).flip([0]);
        Ok(Pca {
            mean: mean.to_kind(Kind::Float),
            components: components.to_kind(Kind::Float),
            variances: variances.to_kind(Kind::Float),
            fitted_rows: n,
        })
    }

    /// The same fit for wide rows, through the Gram matrix G = X̃X̃ᵀ of the centred rows:
    /// its eigenvectors uᵢ give the principal directions X̃ᵀuᵢ/√λᵢ and the variances
    /// λᵢ/(n − 1). Columns are processed in chunks, so beyond `x` the memory is G and the
    /// `k × D` components. At most `GRAM_ROWS` rows, evenly strided, are used.
    fn fit_gram(x: &Tensor, k: i64) -> Result<Pca> {
        let (n_all, d) = (x.size()[0], x.size()[1]);
        let stride = (n_all + GRAM_ROWS - 1) / GRAM_ROWS;
        let x = x.slice(0, 0, n_all, stride);
        let n = x.size()[0];
        // n rows span at most n directions: a larger k keeps n components.
        let k = k.min(n);
        let columns = || {
            (0..d).step_by(FIT_CHUNK as usize).map(move |start| (start, FIT_CHUNK.min(d - start)))
        };
        let opts = (Kind::Double, x.device());
        let (mean, gram) = tch::no_grad(|| {
            let parts: Vec<Tensor> = columns()
                .map(|(start, len)| {
                    to_f64(&x.narrow(1, start, len)).mean_dim(0, false, Kind::Double)
                })
                .collect();
            let mean = Tensor::cat(&parts, 0);
            let mut gram = Tensor::zeros([n, n], opts);
            for (start, len) in columns() {
                let c = (to_f64(&x.narrow(1, start, len)) - mean.narrow(0, start, len))
                    .to_kind(Kind::Float);
                gram += c.matmul(&c.tr()).to_kind(Kind::Double);
            }
            (mean, gram)
        });
        let (eigenvalues, eigenvectors) =
            gram.f_linalg_eigh("L").context("eigendecomposition of the Gram matrix")?;
        let lambda = eigenvalues.narrow(0, n - k, k).flip([0]);
        let u = eigenvectors.narrow(1, n - k, k).flip([1]);
        // Directions of (numerically) zero variance are left out as zero rows.
        let floor = lambda.max().double_value(&[]).max(0.0) * 1e-12;
        let keep = lambda.gt(floor).to_kind(Kind::Double);
        let scale = keep / lambda.clamp_min(floor.max(f64::MIN_POSITIVE)).sqrt();
        let components = tch::no_grad(|| {
            let parts: Vec<Tensor> = columns()
                .map(|(start, len)| {
                    let c = to_f64(&x.narrow(1, start, len)) - mean.narrow(0, start, len);
                    u.tr().matmul(&c) * scale.unsqueeze(1)
                })
                .collect();
            Tensor::cat(&parts, 1)
        });
        Ok(Pca {
            mean: mean.to_kind(Kind::Float),
            components: components.to_kind(Kind::Float),
            variances: (lambda.clamp_min(0.0) / (n - 1) as f64).to_kind(Kind::Float),
            fitted_rows: n,
        })
    }

    /// `[N, D]` → coordinates `[N, k]`.
    pub fn project(&self, x: &Tensor) -> Tensor {
        (x - &self.mean).matmul(&self.components.tr())
    }

    /// Coordinates `[N, k]` → `[N, D]`.
    pub fn unproject(&self, z: &Tensor) -> Tensor {
        z.matmul(&self.components) + &self.mean
    }

    /// The rank-k reconstruction of `x`.
    pub fn reconstruct(&self, x: &Tensor) -> Tensor {
        self.unproject(&self.project(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn recovers_a_planted_low_rank_structure() {
        let _rng = crate::rng_lock();
        tch::manual_seed(1);
        let opts = (Kind::Float, Device::Cpu);
        // 500 points on a 2-D plane in 6-D (variances 9 and 1) plus a small offset.
        let basis =
            Tensor::from_slice(&[1f32, 0., 0., 0., 0., 0., 0., 1., 0., 0., 0., 0.]).view([2, 6]);
        let coords = Tensor::randn([500, 2], opts) * Tensor::from_slice(&[3f32, 1.]);
        let x = coords.matmul(&basis) + 0.5;
        let pca = Pca::fit(&x, 2).unwrap();
        let err = (pca.reconstruct(&x) - &x).abs().max().double_value(&[]);
        assert!(err < 1e-4, "rank-2 data must reconstruct exactly, max error {err}");
        // The first component is the high-variance axis (up to sign).
        assert!((pca.components.double_value(&[0, 0]).abs() - 1.0).abs() < 1e-4);
        let v = Vec::<f32>::try_from(&pca.variances).unwrap();
        assert!(v[0] > 7.0 && v[0] < 11.0 && v[1] > 0.7 && v[1] < 1.3, "{v:?}");
        // One component loses exactly the second axis' variance.
        let pca1 = Pca::fit(&x, 1).unwrap();
        let mse = (pca1.reconstruct(&x) - &x).square().sum(Kind::Double).double_value(&[]) / 500.0;
        assert!((mse - v[1] as f64 * 499.0 / 500.0).abs() < 1e-3, "{mse}");
    }

    #[test]
    fn rejects_impossible_k() {
        let x = Tensor::ones([10, 3], (Kind::Float, Device::Cpu));
        assert!(Pca::fit(&x, 4).is_err());
        assert!(Pca::fit(&x, 0).is_err());
        assert!(Pca::fit(&x.view([30]), 1).is_err());
    }

    #[test]
    fn wide_rows_fit_through_the_gram_matrix_to_the_same_subspace() {
        let _rng = crate::rng_lock();
        tch::manual_seed(2);
        let opts = (Kind::Float, Device::Cpu);
        // 300 rows of width 5000 (above COVARIANCE_MAX_DIM) near a 3-D subspace.
        let basis = Tensor::randn([3, 5000], opts);
        let coords = Tensor::randn([300, 3], opts) * Tensor::from_slice(&[4f32, 2., 1.]);
        let x = coords.matmul(&basis) + Tensor::randn([300, 5000], opts) * 0.01 + 0.3;
        let pca = Pca::fit(&x, 3).unwrap();
        assert_eq!(pca.fitted_rows, 300);
        assert_eq!(pca.components.size(), vec![3, 5000]);
        let gram = pca.components.matmul(&pca.components.tr());
        let eye = Tensor::eye(3, opts);
        assert!((gram - eye).abs().max().double_value(&[]) < 1e-4, "orthonormal components");
        // The residual is the noise alone: 0.01² per value.
        let mse = (pca.reconstruct(&x) - &x).square().mean(Kind::Double).double_value(&[]);
        assert!(mse < 1.2e-4, "{mse}");
        // The variances of an exact SVD of the centred data.
        let centred = &x - x.mean_dim(0, true, Kind::Float);
        let (_, sv, _) = centred.to_kind(Kind::Double).svd(true, true);
        let want = sv.narrow(0, 0, 3).square() / 299.0;
        let got = pca.variances.to_kind(Kind::Double);
        assert!(((got - &want) / want).abs().max().double_value(&[]) < 1e-3);
    }
}
