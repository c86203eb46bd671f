//! Colour images end to end on data/emoji (setup.sh's Twemoji folder), and image files of
//! every awkward kind: mixed sizes, gray beside colour, 16-bit, palette-indexed, CMYK,
//! 1×1, and a header that declares a huge size.

use crate::util::*;
use std::path::{Path, PathBuf};

/// setup.sh's colour folder: train/ and test/ with one sub-folder per emoji category.
fn emoji() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/emoji");
    assert!(dir.join("train").is_dir(), "{} is missing: run scripts/setup.sh", dir.display());
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Pixels of a PNG whose channels differ by more than 60 levels: colour, not gray.
fn coloured_pixels(path: &Path) -> usize {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    img.pixels().filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 60).count()
}

fn train_args(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["train", "--threads", "1", "--device", "cpu", "--limit", "400"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(
        ["--batch-size", "32", "--lr", "0.003", "--data", s(data), "--out", s(out)]
            .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// ae-tch → PyTorch: torch.nn builds the run's net from model.json, loads the exported
/// weights strictly and reconstructs the run's converted test images as ae-tch does; and
/// PyTorch → ae-tch: torch's own initialisation of the same net, imported, reconstructs them
/// as torch does.
fn pytorch_round_trip(d: &Path, run: &Path, exported: &Path) {
    let manifest = read_json(&run.join("model.json"));
    let arch = manifest["model"]["layers"].to_string();
    let spec: ae_tch::data::spec::DataSpec =
        serde_json::from_value(manifest["model"]["input"].clone()).unwrap();
    let spec = spec.image().expect("an image run").clone();
    let test =
        ae_tch::data::load_split(&emoji(), ae_tch::data::Split::Test, &spec.request()).unwrap();
    let values: Vec<f64> = test.values.iter().map(|&v| v as f64 / 255.0).collect();
    std::fs::write(
        d.join("inputs.npy"),
        ae_tch::npy::encode_f64(test.len(), spec.values() as usize, &values),
    )
    .unwrap();
    ae(d, &["encode", "--run", s(run), "--decode", "-o", "ae.npy"]).ok();
    let (json, recon, inputs) = (run.join("model.json"), d.join("ae.npy"), d.join("inputs.npy"));
    let args = ["check", s(&json), s(exported), s(&recon), s(&inputs)];
    let diff = crate::ecosystem::client(&args);
    eprintln!("{arch}, ae-tch → PyTorch: max abs difference {diff:e}");
    assert!(diff <= 1e-5, "ae-tch → PyTorch: max abs difference {diff}");
    // PyTorch → ae-tch: torch's own initialisation of the same net, imported, reconstructs
    // the same images as torch does.
    let made = d.join("torch.safetensors");
    let (torch_out, back) = (d.join("torch.npy"), d.join("back.npy"));
    crate::ecosystem::client(&["make", s(&json), s(&made), s(&torch_out), "3", s(&inputs)]);
    let imported = d.join("imported");
    ae(d, &["import", "--from", s(&made), "--config", s(&json), "--out", s(&imported)]).ok();
    ae(d, &["encode", "--run", s(&imported), "--decode", "-o", s(&back)]).ok();
    let diff = crate::ecosystem::client(&["diff", s(&torch_out), s(&back)]);
    eprintln!("{arch}, PyTorch → ae-tch: max abs difference {diff:e}");
    assert!(diff <= 1e-5, "PyTorch → ae-tch: max abs difference {diff}");
}

#[test]
fn conv_options_build_for_odd_sizes_in_colour_and_round_trip_with_pytorch() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("res");
    let mut extra =
        vec!["--arch", "conv", "--channels", "6,12", "--blocks", "2", "--norm", "group"];
    extra.extend(["--upsample", "resize", "--resize", "15x21", "--latent", "8"]);
    extra.extend(["--epochs", "1", "--limit", "64"]);
    let trained = ae(d, &train_args(&emoji(), &run, &extra)).ok();
    // 64x64 emoji squeezed into 15x21: said once, at train time.
    assert!(
        trained.stderr.contains("note: --resize 15x21 stretches images of another shape, such as ")
            && trained.stderr.contains("(64x64, height x width): the aspect ratio is not kept"),
        "{}",
        trained.stderr
    );
    let layers = &read_json(&run.join("model.json"))["model"]["layers"];
    assert_eq!(
        *layers,
        serde_json::json!({"kind": "conv", "channels": [6, 12], "blocks": 2, "groups": 8,
                           "upsample": "resize"})
    );
    // Reloaded, it evaluates to what training recorded (on as many threads: conv sums
    // are ordered by the thread count); then both ways with PyTorch.
    let eval: serde_json::Value = serde_json::from_str(
        &ae(d, &["eval", "--run", s(&run), "--json", "--threads", "1"]).ok().stdout,
    )
    .unwrap();
    let recorded = &read_json(&run.join("model.json"))["outcome"]["test"];
    assert_eq!((&eval["mse"], &eval["ssim"]), (&recorded["mse"], &recorded["ssim"]));
    let exported = d.join("res.safetensors");
    ae(d, &["export", "--run", s(&run), "-o", s(&exported)]).ok();
    pytorch_round_trip(d, &run, &exported);
}

#[test]
fn colour_conv_on_emoji_trains_reloads_exports_and_draws_in_colour() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("conv");
    let extra = ["--arch", "conv", "--channels", "16,32", "--latent", "16", "--epochs", "2"];
    let mut extra = extra.to_vec();
    extra.extend(["--resize", "32x32"]);
    ae(d, &train_args(&emoji(), &run, &extra)).ok();
    let manifest = read_json(&run.join("model.json"));
    assert_eq!(
        manifest["model"]["input"],
        serde_json::json!({"kind": "image", "color": "rgb", "height": 32, "width": 32,
                           "background": "white", "classes": ["activities", "animals-nature",
                           "flags", "food-drink", "objects", "people-body", "smileys-emotion",
                           "symbols", "travel-places"]})
    );
    // Reloaded, the run evaluates to exactly what training recorded, beside PCA on 3·32·32.
    let eval = ae(d, &["eval", "--run", s(&run), "--json", "--threads", "1"]).ok().stdout;
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let recorded = &manifest["outcome"]["test"];
    for key in ["mse", "ssim", "pca_mse"] {
        assert_eq!(eval[key], recorded[key], "{key}");
    }
    assert_eq!(eval["images"], 406);
    let ssim = eval["ssim"].as_f64().unwrap();
    assert!(ssim > 0.0 && ssim < 1.0, "{ssim}");
    assert!(coloured_pixels(&run.join("grid.png")) > 1000, "grid.png is not in colour");

    // ae-tch → PyTorch: torch.nn builds the conv net from model.json, loads the exported
    // weights strictly and reconstructs the converted test images as ae-tch does.
    let exported = d.join("conv.safetensors");
    let listing = ae(d, &["export", "--run", s(&run), "-o", s(&exported), "--json"]).ok().stdout;
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let first =
        listing["tensors"].as_array().unwrap().iter().find(|t| t["name"] == "encoder.1.weight");
    assert_eq!(first.unwrap()["shape"], serde_json::json!([16, 3, 3, 3]));
    pytorch_round_trip(d, &run, &exported);

    // The user's own files, in colour; inverting makes no sense for colour runs.
    let files: Vec<PathBuf> = ["smileys-emotion", "food-drink"]
        .iter()
        .map(|c| {
            std::fs::read_dir(emoji().join("test").join(c)).unwrap().next().unwrap().unwrap().path()
        })
        .collect();
    let mut args = vec!["denoise", "--run", s(&run), "-o", "out", "--add-noise", "0.2"];
    args.extend(files.iter().map(|f| s(f)));
    ae(d, &args).ok();
    let stem = files[0].file_stem().unwrap().to_str().unwrap();
    // The result at the file's own size (64x64, not the model's 32x32), in RGB; the
    // comparison beside it in colour.
    let result = d.join("out").join(format!("{stem}-denoised.png"));
    assert_eq!(image::image_dimensions(&result).unwrap(), (64, 64));
    assert_eq!(image::open(&result).unwrap().color(), image::ColorType::Rgb8);
    assert!(coloured_pixels(&d.join("out").join(format!("{stem}-compare.png"))) > 1000);
    args.extend(["--invert", "yes"]);
    ae(d, &args).fails_with(&["--invert yes applies to grayscale runs", "rgb"]);
}

#[test]
fn colour_vae_on_an_mlp_samples_interpolates_and_maps_in_colour() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("vae");
    let extra =
        ["--arch", "vae", "--hidden", "64", "--latent", "2", "--epochs", "2", "--resize", "16x16"];
    ae(d, &train_args(&emoji(), &run, &extra)).ok();
    assert_eq!(read_json(&run.join("model.json"))["model"]["input"]["color"], "rgb");
    ae(d, &["sample", "--run", s(&run), "-n", "20", "-o", "samples.png"]).ok();
    ae(d, &["interpolate", "--run", s(&run), "--from", "0", "--to", "5", "-o", "path.png"]).ok();
    let args =
        ["plot-latent", "--run", s(&run), "-o", "z.png", "--manifold", "m.png", "--steps", "6"];
    ae(d, &args).ok();
    for png in ["samples.png", "path.png", "m.png"] {
        assert!(coloured_pixels(&d.join(png)) > 100, "{png} is not in colour");
    }

    // Every code and score traces back to its image file (issue 19 item 7).
    ae(d, &["encode", "--run", s(&run), "-o", "codes.csv"]).ok();
    let csv = std::fs::read_to_string(d.join("codes.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("index,file,label,z_1,z_2"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 406);
    // test/<category>/<name>.png, and one label per category folder.
    let mut label_of = std::collections::BTreeMap::new();
    for row in &rows {
        let file = Path::new(row[1]);
        assert!(emoji().join(file).is_file(), "{}", row[1]);
        let parts: Vec<_> = file.components().map(|c| c.as_os_str()).collect();
        assert_eq!((parts.len(), parts[0]), (3, "test".as_ref()), "{}", row[1]);
        assert_eq!(*label_of.entry(parts[1]).or_insert(row[2]), row[2], "{row:?}");
    }
    let labels: std::collections::BTreeSet<_> = label_of.values().collect();
    assert!(label_of.len() > 5 && labels.len() == label_of.len(), "{label_of:?}");
    let said = ae(d, &["encode", "--run", s(&run), "-o", "codes.npy"]).ok().stdout;
    assert!(said.contains("codes.files.txt"), "{said}");
    let listed = std::fs::read_to_string(d.join("codes.files.txt")).unwrap();
    assert!(
        listed.lines().eq(rows.iter().map(|r| r[1])),
        "the .npy's file list is not in row order"
    );
    ae(d, &["anomaly", "--run", s(&run), "-o", "scores.csv", "--no-baselines"]).ok();
    let scores = std::fs::read_to_string(d.join("scores.csv")).unwrap();
    assert!(scores.starts_with("index,file,label,score,is_anomaly,probability\n"), "{scores:.80}");
    let second: Vec<&str> = scores.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(second[..3], rows[0][..3]);
}

/// A PNG that declares `w × h` pixels and holds no pixel data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], body: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(body);
        png.extend((body.len() as u32).to_be_bytes());
        png.extend(kind.iter().chain(body));
        png.extend(crc.sum().to_be_bytes());
    };
    let ihdr: Vec<u8> = [&w.to_be_bytes()[..], &h.to_be_bytes(), &[8, 2, 0, 0, 0]].concat();
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[]);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn awkward_image_files_are_converted_or_refused_by_name() {
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("mixed");
    let class = |c: &str| {
        let p = data.join("train").join(c);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::create_dir_all(data.join("test").join(c)).unwrap();
        p
    };
    let (a, b) = (class("a"), class("b"));
    image::GrayImage::from_fn(20, 20, |x, _| image::Luma([(x * 12) as u8]))
        .save(a.join("gray.png"))
        .unwrap();
    // 16-bit colour.
    image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(20, 20, |x, y| {
        image::Rgb([x as u16 * 3000, y as u16 * 3000, 40000])
    })
    .save(a.join("deep.png"))
    .unwrap();
    // Palette-indexed with transparency (4-bit and 8-bit ones occur in data/emoji).
    let indexed = std::fs::read_dir(emoji().join("test/flags"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap()[25] == 3);
    std::fs::copy(indexed.unwrap(), b.join("indexed.png")).unwrap();
    // CMYK JPEG.
    let cmyk: Vec<u8> = (0..20 * 20).flat_map(|i| [(i % 200) as u8, 30, 200, 10]).collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&cmyk, 20, 20, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    std::fs::write(b.join("cmyk.jpg"), jpeg).unwrap();
    // 1×1.
    image::RgbImage::from_pixel(1, 1, image::Rgb([250, 10, 10])).save(b.join("dot.png")).unwrap();
    image::GrayImage::from_pixel(1, 1, image::Luma([9])).save(data.join("test/a/t.png")).unwrap();

    let info = |extra: &[&str]| {
        let mut args = vec!["data", "info", s(&data), "--json"];
        args.extend(extra);
        ae(d, &args)
    };
    // Three sizes: refused with the sizes and a --resize to use.
    info(&[]).fails_with(&["3 sizes", "20x20: 3", "1x1: 2", "64x64: 1", "--resize 20x20"]);
    let rgb: serde_json::Value =
        serde_json::from_str(&info(&["--resize", "12x12"]).ok().stdout).unwrap();
    assert_eq!((rgb[0]["images"].as_u64(), rgb[0]["channels"].as_i64()), (Some(5), Some(3)));
    assert_eq!((rgb[1]["height"].as_i64(), rgb[1]["channels"].as_i64()), (Some(12), Some(3)));
    let gray: serde_json::Value =
        serde_json::from_str(&info(&["--resize", "12x12", "--color", "gray"]).ok().stdout).unwrap();
    assert_eq!(gray[0]["channels"], 1);
    // The mixed folder trains (a 1×1 test image is scaled up to the run's size).
    let run = d.join("run");
    let extra = [
        "--resize",
        "8x8",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--latent",
        "2",
        "--val-fraction",
        "0",
    ];
    ae(d, &train_args(&data, &run, &extra)).ok();

    // A header that declares 100000×100000 pixels is refused before decoding.
    std::fs::write(a.join("huge.png"), png_header_only(100_000, 100_000)).unwrap();
    info(&[]).fails_with(&["huge.png", "declares 100000x100000"]);
    info(&["--resize", "12x12"]).fails_with(&["huge.png", "exceeds limit", "8192 pixels a side"]);
}

/// Issue 34: with `--arch` and the training settings left out, the data choose them, the
/// first line says what was chosen and model.json records it; an MLP flag keeps the MLP;
/// no validation set means no early stopping; a flag for images is refused on a table.
#[test]
fn the_data_choose_the_family_and_the_settings_and_the_first_line_says_so() {
    let dir = tempdir();
    let d = dir.path();
    let base = ["train", "--threads", "1", "--limit", "200", "--epochs", "1", "--resize", "16x16"];
    let base = [&base[..], &["--device", "cpu"]].concat();
    let data = emoji();
    let with = |extra: &[&str], out: &str| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--data", s(&data), "--out", out]);
        args.extend(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    // A conv autoencoder trains in bf16 where the CPU computes it natively with AMX (with
    // AVX512-BF16 alone bf16 is no faster), as the kernel's flags say and doctor reports.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo.lines().find(|l| l.starts_with("flags")).unwrap_or_default();
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    let (native, amx) = (has("amx_bf16") || has("avx512_bf16"), has("amx_bf16"));
    let doctor: serde_json::Value =
        serde_json::from_str(&ae(d, &["doctor", "--json"]).ok().stdout).unwrap();
    assert_eq!(!doctor["cpu_bf16"].is_null(), native, "{doctor}");
    assert_eq!(doctor["cpu_bf16_default"], amx, "{doctor}");
    let (precision, bf16) = if amx { ("bf16", ", --precision bf16") } else { ("fp32", "") };
    let run = ae(d, &with(&[], "auto")).ok();
    let first = run.stderr.lines().find(|l| l.starts_with("training")).unwrap();
    let chosen = format!(
        "chosen by the data: --arch conv, --norm none, --batch-size 16, --early-stop 5, \
         --loss bce, --augment flip{bf16}"
    );
    assert!(first.starts_with("training reconstruct autoencoder: conv 3×16×16"), "{first}");
    assert!(first.ends_with(&chosen), "{first}");
    let m = read_json(&d.join("auto/model.json"));
    assert_eq!(m["model"]["layers"]["kind"], "conv");
    assert_eq!(m["model"]["layers"].get("groups"), None, "colour images train without a norm");
    let t = &m["train"];
    let recorded = (&t["batch_size"], &t["early_stop"], &t["loss"], &t["augment"]);
    assert_eq!(recorded, (&16.into(), &5.into(), &"bce".into(), &"flip".into()));
    assert_eq!(t["precision"], precision);
    // --hidden asks for the MLP; flags given stand; no validation rows, no early stop.
    let given = ["--hidden", "32", "--loss", "mse", "--val-fraction", "0", "--augment", "none"];
    let run = ae(d, &with(&given, "mlp")).ok();
    let first = run.stderr.lines().find(|l| l.starts_with("training")).unwrap();
    assert!(first.contains(": mlp 768-32-16") && !first.contains("chosen"), "{first}");
    let m = read_json(&d.join("mlp/model.json"));
    assert_eq!(m["model"]["layers"]["kind"], "mlp");
    let t = &m["train"];
    assert_eq!(
        (&t["early_stop"], &t["loss"], t.get("augment")),
        (&serde_json::Value::Null, &"mse".into(), None)
    );
    assert_eq!(t["precision"], "fp32", "fully connected networks stay fp32");
    // bf16 asked for where it is slower than fp32 (no AMX) is trained, with a note.
    let run = ae(d, &with(&[&given[..], &["--precision", "bf16"]].concat(), "bf16")).ok();
    let noted = run.stderr.lines().any(|l| {
        l.starts_with("note: --precision bf16: this CPU") && l.contains("slower than fp32 here")
    });
    assert_eq!(noted, !amx, "{}", run.stderr);
    // An image setting on a table is refused by name, before anything is written.
    std::fs::write(d.join("t.csv"), "a,b\n1,2\n3,4\n5,6\n7,8\n").unwrap();
    let args = ["train", "--data", "t.csv", "--augment", "flip", "--out", "v"];
    ae(d, &args).fails_with(&["--augment", "is for images"]);
    assert!(!d.join("v").exists());
    // And the tail score of tables on images.
    let args = ["train", "--limit", "64", "--epochs", "1", "--tail-score", "--out", "v"];
    ae(d, &args).fails_with(&["--tail-score", "is for vector data"]);
}

/// WebP, BMP and TIFF files are read like PNGs (issue 35): one picture saved in all four
/// formats gives four identical codes; nothing is skipped.
#[test]
fn webp_bmp_and_tiff_files_read_as_the_same_pixels() {
    let dir = tempdir();
    let d = dir.path();
    let picture =
        image::RgbImage::from_fn(12, 12, |x, y| image::Rgb([(x * 20) as u8, (y * 20) as u8, 90]));
    for split in ["train", "test"] {
        let folder = d.join("formats").join(split).join("all");
        std::fs::create_dir_all(&folder).unwrap();
        for ext in ["png", "webp", "bmp", "tiff"] {
            picture.save(folder.join(format!("p.{ext}"))).unwrap();
        }
    }
    let args = ["--epochs", "1", "--hidden", "8", "--latent", "2", "--out", "run"];
    let run = ae(d, &[&["train", "--data", "formats", "--threads", "1"], &args[..]].concat()).ok();
    assert!(!run.stderr.contains("skipped"), "{}", run.stderr);
    ae(d, &["encode", "--run", "run", "--split", "test", "-o", "codes.csv"]).ok();
    let codes = std::fs::read_to_string(d.join("codes.csv")).unwrap();
    let rows: Vec<&str> = codes.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{codes}");
    for ext in ["png", "webp", "bmp", "tiff"] {
        assert!(codes.contains(&format!("p.{ext}")), "{codes}");
    }
    // The last two fields are the code (k = 2).
    let code = |row: &str| row.rsplitn(3, ',').take(2).map(String::from).collect::<Vec<_>>();
    assert!(rows.iter().all(|r| code(r) == code(rows[0])), "{codes}");
}
