//! `ae-tch encode`: the latent code z (or, with --decode, the reconstruction x̂) of every
//! image of a split, as CSV or .npy.

use crate::cli::EncodeArgs;
use crate::data;
use crate::run_store::write_atomic;
use crate::{metrics, npy};
use anyhow::Result;
use tch::Device;

pub fn run(args: EncodeArgs) -> Result<()> {
    let npy = match args.output.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("npy") => true,
        Some(e) if e.eq_ignore_ascii_case("csv") => false,
        _ => anyhow::bail!("{}: expected a .csv or .npy file name", args.output.display()),
    };
    let loaded = super::open_run(&args.run)?;
    let images = loaded.images(args.data.as_deref(), args.split.into())?;
    let x = images.to_unit(loaded.device);
    let z = if args.decode {
        metrics::reconstruct(&loaded.model, &x)
    } else {
        metrics::batched(&x, |b| loaded.model.encode(b))
    }
    .to_device(Device::Cpu);
    let (n, k) = (z.size()[0] as usize, z.size()[1] as usize);
    let codes = data::to_host_f32(&z)?;
    let labels = images.labels.as_deref();
    let cols = k + 1 + labels.is_some() as usize;

    let bytes = if npy {
        let mut values = Vec::with_capacity(n * cols);
        for (i, row) in codes.chunks_exact(k).enumerate() {
            values.push(i as f64);
            if let Some(l) = labels {
                values.push(l[i] as f64);
            }
            values.extend(row.iter().map(|&v| v as f64));
        }
        npy::encode_f64(n, cols, &values)
    } else {
        let mut csv = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["index".to_string()];
        if labels.is_some() {
            header.push("label".into());
        }
        let prefix = if args.decode { "x" } else { "z" };
        header.extend((1..=k).map(|j| format!("{prefix}_{j}")));
        csv.write_record(&header)?;
        for (i, row) in codes.chunks_exact(k).enumerate() {
            let mut record = vec![i.to_string()];
            if let Some(l) = labels {
                record.push(l[i].to_string());
            }
            record.extend(row.iter().map(|v| v.to_string()));
            csv.write_record(&record)?;
        }
        csv.into_inner()?
    };
    write_atomic(&args.output, &bytes)?;
    let what = if args.decode { "reconstructions" } else { "codes" };
    super::print(&format!("wrote {n} {what} of size {k} to {}\n", args.output.display()))
}
