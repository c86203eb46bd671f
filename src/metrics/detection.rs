//! Scores → decisions: percentiles for thresholds, ROC-AUC, average precision, precision
//! and recall.

/// The `p`-th percentile (0–100) of `values`, interpolating linearly between order
/// statistics (NumPy's default). `None` for an empty slice.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p.clamp(0.0, 100.0) / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// Area under the ROC curve of `scores` for telling `positive` items from the rest: the
/// probability that a random positive scores above a random negative, ties counting half
/// (the Mann–Whitney U statistic). `None` without both classes.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the positives' ranks, tied groups sharing their mean rank (1-based).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * order[i..=j].iter().filter(|&&k| positive[k]).count() as f64;
        i = j + 1;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos * n_neg) as f64)
}

/// Average precision of `scores` for finding the `positive` items: the precision at each
/// distinct score, taken from the highest down, weighted by the recall it adds
/// (Σ (Rₙ − Rₙ₋₁)·Pₙ, tied scores one threshold: scikit-learn's
/// `average_precision_score`). Chance is the positives' share. `None` without positives.
pub fn average_precision(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let hits = order[i..=j].iter().filter(|&&k| positive[k]).count();
        tp += hits;
        seen += j - i + 1;
        ap += hits as f64 / n_pos as f64 * (tp as f64 / seen as f64);
        i = j + 1;
    }
    Some(ap)
}

/// Precision and recall of the decisions `flagged` against the truth `positive`.
pub fn precision_recall(flagged: &[bool], positive: &[bool]) -> (f64, f64) {
    let tp = flagged.iter().zip(positive).filter(|(&f, &p)| f && p).count() as f64;
    let flagged_n = flagged.iter().filter(|&&f| f).count() as f64;
    let positive_n = positive.iter().filter(|&&p| p).count() as f64;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    (ratio(tp, flagged_n), ratio(tp, positive_n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1, 2, 3, 4], [0, 50, 99, 100]) = 1, 2.5, 3.97, 4
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 50.0), Some(2.5));
        assert!((percentile(&v, 99.0).unwrap() - 3.97).abs() < 1e-12);
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 100.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn roc_auc_matches_hand_counts() {
        // Perfect separation, perfect inversion, and chance.
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        // Positives {0.4, 0.8} vs negatives {0.1, 0.5, 0.4}: pairs won 1 + 0 + 0.5 (tie)
        // for 0.4, 3 for 0.8 → 4.5 / 6 = 0.75.
        let auc = roc_auc(&[0.4, 0.8, 0.1, 0.5, 0.4], &[true, true, false, false, false]);
        assert_eq!(auc, Some(0.75));
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn average_precision_matches_scikit_learn() {
        // sklearn.metrics.average_precision_score([1, 0, 1, 0, 0], [.9, .8, .7, .3, .1])
        // = 1 * 0.5 + 2/3 * 0.5 = 0.8333...
        let truth = [true, false, true, false, false];
        let ap = average_precision(&[0.9, 0.8, 0.7, 0.3, 0.1], &truth).unwrap();
        assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
        // Ties form one threshold: ([1, 0, 1], [.5, .5, .2]) → 0.5·0.5 + 0.5·(2/3) = 0.5833
        let ap = average_precision(&[0.5, 0.5, 0.2], &[true, false, true]).unwrap();
        assert!((ap - 7.0 / 12.0).abs() < 1e-12, "{ap}");
        assert_eq!(average_precision(&[0.9, 0.1], &[true, false]), Some(1.0));
        assert_eq!(average_precision(&[0.1, 0.2], &[false, false]), None);
    }

    #[test]
    fn precision_and_recall_count_hits() {
        let flagged = [true, true, false, false, true];
        let truth = [true, false, true, false, true];
        assert_eq!(precision_recall(&flagged, &truth), (2.0 / 3.0, 2.0 / 3.0));
        assert_eq!(precision_recall(&[false, false], &[true, false]), (0.0, 0.0));
    }
}
