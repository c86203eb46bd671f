//! `ae-tch encode`: the latent code z (or, with --decode, the reconstruction x̂) of every
//! image of a split, as CSV or .npy.

use crate::atomic::write_atomic;
use crate::cli::EncodeArgs;
use crate::data;
use crate::{metrics, npy};
use anyhow::Result;
use tch::Device;

/// The code (or with `decode` the reconstruction) of every row, row after row, and its
/// width; a part of the rows at a time (windows of series are cut as they are read).
fn codes(
    loaded: &super::LoadedRun,
    images: &data::Rows,
    decode: bool,
) -> Result<(Vec<f32>, usize)> {
    let model = &loaded.manifest.model;
    let width = if decode { model.input_dim() } else { model.latent };
    let (mut codes, mut k) = (Vec::new(), width as usize);
    for r in images.chunks() {
        let x = images.unit_range(r, loaded.device);
        let z = match decode {
            true => metrics::reconstruct(&loaded.model, &x),
            false => metrics::batched(&x, |b| loaded.model.encode(b)),
        };
        k = z.size()[1] as usize;
        codes.extend(data::to_host_f32(&z.to_device(Device::Cpu))?);
    }
    Ok((codes, k))
}

pub fn run(args: EncodeArgs) -> Result<()> {
    let npy = match args.output.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("npy") => true,
        Some(e) if e.eq_ignore_ascii_case("csv") => false,
        _ => anyhow::bail!("{}: expected a .csv or .npy file name", args.output.display()),
    };
    let loaded = super::open_run(&args.run)?;
    let images = loaded.rows((args.data.as_deref(), args.read.reading()), args.split.into())?;
    let (codes, k) = codes(&loaded, &images, args.decode)?;
    let n = images.len();
    let labels = images.labels();
    let input = &loaded.manifest.model.input;
    // Reconstructed vectors go back to the file's units and carry its column names.
    let vector = input.vector().filter(|_| args.decode);
    // Codes as float32 text; vector reconstructions in the file's units.
    let units = |row: &[f32]| match vector {
        Some(v) => v.scaling.to_units(row),
        None => row.iter().map(|&v| v as f64).collect(),
    };
    let text: fn(f64) -> String = match vector {
        Some(_) => |v| v.to_string(),
        None => |v| (v as f32).to_string(),
    };
    let cols = k + 1 + labels.is_some() as usize;

    let bytes = if npy {
        // Written row by row into the file's bytes (the windows of a long series: millions).
        let ids = images.ids().1;
        let mut out = npy::header_f64(n, cols, n * cols * 8);
        for (i, row) in codes.chunks_exact(k).enumerate() {
            let mut put = |v: f64| out.extend_from_slice(&v.to_le_bytes());
            put(ids[i] as f64);
            if let Some(l) = labels {
                put(l[i] as f64);
            }
            units(row).into_iter().for_each(put);
        }
        out
    } else {
        let (key_names, keys) = images.key_columns(input);
        let values: Vec<f64> = codes.chunks_exact(k).flat_map(units).collect();
        let mut csv = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = key_names.iter().map(|s| s.to_string()).collect();
        match vector {
            Some(v) => header.extend(v.columns.iter().cloned()),
            None => {
                let prefix = if args.decode { "x" } else { "z" };
                header.extend((1..=k).map(|j| format!("{prefix}_{j}")));
            }
        }
        csv.write_record(&header)?;
        for (key, row) in keys.into_iter().zip(values.chunks_exact(k)) {
            csv.write_record(key.into_iter().chain(row.iter().map(|&v| text(v))))?;
        }
        csv.into_inner()?
    };
    // A .npy holds numbers only: the files of an image folder (or of a folder of series'
    // windows) go beside it, one per line in row order.
    let files = if npy { images.files() } else { None };
    let listing = files.map(|l| (args.output.with_extension("files.txt"), l.join("\n") + "\n"));
    if let Some((path, list)) = &listing {
        write_atomic(path, list.as_bytes())?;
    }
    write_atomic(&args.output, &bytes)?;
    let what = if args.decode { "reconstructions" } else { "codes" };
    let mut message = format!("wrote {n} {what} of size {k} to {}\n", args.output.display());
    if let Some((path, _)) = listing {
        message += &format!("wrote the file of each row to {}\n", path.display());
    }
    super::print(&message)
}
