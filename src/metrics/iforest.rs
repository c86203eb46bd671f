//! Isolation Forest (Liu, Ting & Zhou 2008), the baseline `anomaly` prints beside the
//! autoencoder: with the paper's standard settings (100 trees, subsamples of 256 rows,
//! height limit ⌈log₂ 256⌉), seeded, on the same rows. An anomaly is isolated by fewer
//! random axis-parallel cuts than a normal point; the score is 2^(−E[h(x)] / c(ψ)).

use crate::data::split::{mix64, SplitMix64};

/// The paper's settings: t = 100 trees, ψ = 256 rows per tree.
pub const TREES: usize = 100;
pub const SAMPLE: usize = 256;

enum Node {
    /// `size` training rows ended here; the path length adds c(size) for them.
    Leaf {
        size: usize,
    },
    Split {
        feature: usize,
        cut: f32,
        left: Box<Node>,
        right: Box<Node>,
    },
}

pub struct IsolationForest {
    trees: Vec<Node>,
    /// c(ψ): the average path length of an unsuccessful search in a binary search tree
    /// of ψ items, which normalises the score.
    norm: f64,
}

/// Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// c(n) = 2·H(n − 1) − 2(n − 1)/n with the paper's H(i) ≈ ln(i) + γ (as scikit-learn
/// computes it); c(2) = 1, c(1) = c(0) = 0.
fn average_path(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => 2.0 * (((n - 1) as f64).ln() + EULER_GAMMA) - 2.0 * (n - 1) as f64 / n as f64,
    }
}

/// Reads rows by position, row-major (`IsolationForest::fit_rows`).
pub type Gather<'a, E> = &'a dyn Fn(&[usize]) -> Result<Vec<f32>, E>;

impl IsolationForest {
    /// Grows the forest on `values` (`rows × width`, row-major). Same seed, same forest.
    pub fn fit(values: &[f32], width: usize, seed: u64) -> IsolationForest {
        let rows = values.len() / width.max(1);
        let gather = |at: &[usize]| -> Result<Vec<f32>, std::convert::Infallible> {
            Ok(at.iter().flat_map(|&r| &values[r * width..(r + 1) * width]).copied().collect())
        };
        match Self::fit_rows((rows, width), seed, &gather) {
            Ok(forest) => forest,
            Err(never) => match never {},
        }
    }

    /// `fit` on `rows` rows of `width` values that `gather` reads by position (only the
    /// ψ rows of each tree are read): the same forest as `fit` on their matrix.
    pub fn fit_rows<E>(
        (rows, width): (usize, usize),
        seed: u64,
        gather: Gather<'_, E>,
    ) -> Result<IsolationForest, E> {
        let sample = SAMPLE.min(rows);
        let limit = (sample.max(2) as f64).log2().ceil() as usize;
        let mut picks = Vec::with_capacity(TREES);
        let mut rngs = Vec::with_capacity(TREES);
        for t in 0..TREES {
            let mut rng = SplitMix64(mix64(seed ^ mix64(t as u64)));
            // ψ distinct rows, by a partial Fisher–Yates shuffle of 0..rows whose moved
            // entries alone are kept.
            let mut moved = std::collections::HashMap::new();
            let pick: Vec<usize> = (0..sample)
                .map(|i| {
                    let j = i + rng.below((rows - i) as u64) as usize;
                    let (at_i, at_j) = (*moved.get(&i).unwrap_or(&i), *moved.get(&j).unwrap_or(&j));
                    moved.insert(j, at_i);
                    at_j
                })
                .collect();
            picks.push(pick);
            rngs.push(rng);
        }
        // The rows the trees use, read once, renumbered in the order read.
        let mut used: Vec<usize> = picks.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        let values = gather(&used)?;
        let trees = picks
            .into_iter()
            .zip(rngs)
            .map(|(pick, mut rng)| {
                let mut pick: Vec<usize> =
                    pick.iter().map(|r| used.binary_search(r).unwrap_or(0)).collect();
                grow(&values, width, &mut pick, 0, limit, &mut rng)
            })
            .collect();
        Ok(IsolationForest { trees, norm: average_path(sample) })
    }

    /// The anomaly score of each row of `values` (same width as the fit), in (0, 1]:
    /// near 1 is isolated quickly (anomalous), well below 0.5 is normal.
    pub fn score(&self, values: &[f32], width: usize) -> Vec<f64> {
        values
            .chunks_exact(width)
            .map(|x| {
                let mean = self.trees.iter().map(|t| path_length(t, x)).sum::<f64>()
                    / self.trees.len() as f64;
                if self.norm > 0.0 {
                    (-mean / self.norm).exp2()
                } else {
                    0.5
                }
            })
            .collect()
    }
}

fn grow(
    values: &[f32],
    width: usize,
    rows: &mut [usize],
    depth: usize,
    limit: usize,
    rng: &mut SplitMix64,
) -> Node {
    if depth >= limit || rows.len() <= 1 {
        return Node::Leaf { size: rows.len() };
    }
    // A cut is drawn on a feature that varies over these rows (as scikit-learn does: a
    // constant feature cannot separate anything): random draws first, and only when they
    // keep hitting constant features, a pass over the rest.
    let range = |j: usize| {
        rows.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
            let v = values[r * width + j];
            (lo.min(v), hi.max(v))
        })
    };
    let drawn = (0..8).find_map(|_| {
        let j = rng.below(width as u64) as usize;
        let (lo, hi) = range(j);
        (lo < hi).then_some((j, lo, hi))
    });
    let (feature, lo, hi) = match drawn {
        Some(pick) => pick,
        None => {
            let varying: Vec<(usize, f32, f32)> = (0..width)
                .filter_map(|j| {
                    let (lo, hi) = range(j);
                    (lo < hi).then_some((j, lo, hi))
                })
                .collect();
            if varying.is_empty() {
                return Node::Leaf { size: rows.len() };
            }
            varying[rng.below(varying.len() as u64) as usize]
        }
    };
    let cut = (lo as f64 + rng.unit() * (hi as f64 - lo as f64)) as f32;
    // Rows below the cut to the front.
    let mut split = 0;
    for i in 0..rows.len() {
        if values[rows[i] * width + feature] < cut {
            rows.swap(i, split);
            split += 1;
        }
    }
    if split == 0 || split == rows.len() {
        // Rounding put the cut on an end: no split, as a leaf of these rows.
        return Node::Leaf { size: rows.len() };
    }
    let (left, right) = rows.split_at_mut(split);
    Node::Split {
        feature,
        cut,
        left: Box::new(grow(values, width, left, depth + 1, limit, rng)),
        right: Box::new(grow(values, width, right, depth + 1, limit, rng)),
    }
}

/// h(x): the edges from the root to x's leaf, plus c(size) for the rows the leaf holds.
fn path_length(mut node: &Node, x: &[f32]) -> f64 {
    let mut depth = 0.0;
    loop {
        match node {
            Node::Leaf { size } => return depth + average_path(*size),
            Node::Split { feature, cut, left, right } => {
                node = if x[*feature] < *cut { left } else { right };
                depth += 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_path_matches_the_paper() {
        // c(2) = 1; c(256) = 2(ln 255 + γ) − 2·255/256 ≈ 10.2448 (scikit-learn's
        // _average_path_length([256])).
        assert_eq!(average_path(1), 0.0);
        assert!((average_path(2) - 1.0).abs() < 1e-12);
        assert!((average_path(256) - 10.244_8).abs() < 1e-4, "{}", average_path(256));
    }

    #[test]
    fn outliers_score_higher_and_the_forest_is_seeded() {
        // A tight 2-D cloud on a grid, and two far points.
        let mut values = Vec::new();
        for i in 0..500 {
            values.extend([(i % 25) as f32 * 0.01, (i / 25) as f32 * 0.01]);
        }
        values.extend([5.0, 5.0, -3.0, 0.1]);
        let forest = IsolationForest::fit(&values, 2, 7);
        let scores = forest.score(&values, 2);
        let inlier_max = scores[..500].iter().copied().fold(0.0, f64::max);
        assert!(scores[500] > inlier_max && scores[501] > inlier_max, "{:?}", &scores[498..]);
        assert!(scores[500] > 0.7 && scores[250] < 0.6, "{} {}", scores[500], scores[250]);
        assert_eq!(scores, IsolationForest::fit(&values, 2, 7).score(&values, 2));
        assert_ne!(scores, IsolationForest::fit(&values, 2, 8).score(&values, 2));
    }

    #[test]
    fn constant_data_and_tiny_sets_do_not_break_it() {
        let forest = IsolationForest::fit(&[1.0; 20], 2, 0);
        assert!(forest.score(&[1.0, 1.0], 2).iter().all(|s| s.is_finite()));
        let one = IsolationForest::fit(&[1.0, 2.0], 2, 0);
        assert_eq!(one.score(&[1.0, 2.0], 2), vec![0.5]);
    }
}
