//! The members of a table's ensemble (`--ensemble`): after the run's own model, K - 1 more
//! autoencoders with the same settings, each from the next seed (its initial weights, its
//! validation noise and its batches' order), trained quietly on the same rows and kept by
//! the detector (`metrics::detector`), not as checkpoints: an interrupted run trains them
//! again when it is resumed.

use crate::config::{ModelConfig, TrainConfig};
use crate::metrics::detector::Member;
use crate::train;
use anyhow::{Context, Result};
use std::time::Instant;

/// Trains the ensemble's members beyond the run's own model; none when `cfg.ensemble` is 1
/// or the run is not on a table.
pub fn train(
    model_cfg: &ModelConfig,
    cfg: &TrainConfig,
    data: train::Data<'_>,
    device: tch::Device,
) -> Result<Vec<Member>> {
    let more = cfg.ensemble.saturating_sub(1);
    if more == 0 || model_cfg.input.table().is_none() {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let members = (1..=more as u64)
        .map(|i| {
            let cfg = TrainConfig { seed: cfg.seed + i, ..cfg.clone() };
            let (vs, model) = super::network(model_cfg, &cfg, data.train, device, true)?;
            train::fit(&model, &vs, data, &cfg, None, None, &mut |_| Ok(())).with_context(
                || format!("training the ensemble's member from seed {}", cfg.seed),
            )?;
            Ok(Member { vs, model })
        })
        .collect::<Result<Vec<_>>>()?;
    crate::log::note(format_args!(
        "trained {more} more {} for the anomaly score's ensemble (seeds {}–{}) in {:.1} s",
        if more == 1 { "autoencoder" } else { "autoencoders" },
        cfg.seed + 1,
        cfg.seed + more as u64,
        started.elapsed().as_secs_f64()
    ));
    Ok(members)
}
