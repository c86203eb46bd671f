//! The user's own image files: denoising them, and folders of them as training data.

use crate::util::*;
use ae_tch::data::{load_split, Split};
use image::{imageops, GrayImage, ImageFormat};
use std::path::Path;

/// The first `n` test digits of data/mnist as 28x28 images.
fn digits(n: usize) -> Vec<(GrayImage, u8)> {
    let test = load_split(&mnist(), Split::Test, &Default::default()).unwrap();
    let labels = test.labels.clone().unwrap();
    (0..n)
        .map(|i| {
            let px = test.values[i * 784..(i + 1) * 784].to_vec();
            (GrayImage::from_raw(28, 28, px).unwrap(), labels[i])
        })
        .collect()
}

fn dims(path: &Path) -> (u32, u32) {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_luma8().dimensions()
}

#[test]
fn denoise_reads_png_and_jpeg_of_any_size_and_polarity() {
    let dir = tempdir();
    // Dark strokes on white paper at 56x56, as a scan would be; one saved as JPEG.
    for (i, (img, _)) in digits(3).into_iter().enumerate() {
        let mut paper = imageops::resize(&img, 56, 56, imageops::FilterType::Triangle);
        imageops::invert(&mut paper);
        let name = if i == 2 {
            "c.jpg"
        } else if i == 1 {
            "b.png"
        } else {
            "a.png"
        };
        let format = if i == 2 { ImageFormat::Jpeg } else { ImageFormat::Png };
        paper.save_with_format(dir.path().join(name), format).unwrap();
    }
    let r = shared_denoise_run().to_str().unwrap().to_string();
    let args = [
        "denoise",
        "--run",
        &r,
        "a.png",
        "b.png",
        "c.jpg",
        "-o",
        "out",
        "--add-noise",
        "0.3",
        "--grid",
        "g.png",
    ];
    let run = ae(dir.path(), &args).ok();
    assert!(run.stdout.contains("out/c-denoised.png"), "{}", run.stdout);
    // Square files of another size are resized without a note; digits are not flagged.
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    for name in ["a", "b", "c"] {
        // The result at the file's own size, in its own polarity: mostly white paper.
        let out = dir.path().join(format!("out/{name}-denoised.png"));
        assert_eq!(dims(&out), (56, 56));
        assert!(mean(&out) > 150.0, "{name}: dark-on-light like the input, mean {}", mean(&out));
        // Beside it the clean input, the noisy one and the result, magnified.
        let compare = dir.path().join(format!("out/{name}-compare.png"));
        assert_eq!(dims(&compare), (3 * 28 * 4, 28 * 4));
    }
    // Three rows of three; the figure may widen to its title, which names the run's
    // (temporary, so variably wide) folder.
    let (w, h) = ae_tch::plot::GridLayout::new(3, 3, 28, 28).size();
    let got = dims(&dir.path().join("g.png"));
    assert!(got.1 == h && got.0 >= w, "{got:?} against {w}x{h}");
}

fn mean(path: &Path) -> f64 {
    let img = image::open(path).unwrap().to_luma8();
    img.as_raw().iter().map(|&v| v as f64).sum::<f64>() / img.as_raw().len() as f64
}

/// Issue 19 items 1 and 8: transparency, a file of another shape, and a file unlike the
/// training data.
#[test]
fn denoise_composites_transparency_keeps_the_file_shape_and_flags_unlike_inputs() {
    let dir = tempdir();
    let d = dir.path();
    let (digit, _) = digits(1).remove(0);
    // A black digit on a transparent background, as paint programs save it, and the same
    // digit black on opaque white.
    let ink = |x, y| 255 - digit.get_pixel(x, y).0[0];
    let clear = image::RgbaImage::from_fn(28, 28, |x, y| image::Rgba([0, 0, 0, 255 - ink(x, y)]));
    clear.save(d.join("clear.png")).unwrap();
    GrayImage::from_fn(28, 28, |x, y| image::Luma([ink(x, y)])).save(d.join("paper.png")).unwrap();
    // The same digit stretched to 84x56 (3:2), and uniform noise, like no digit.
    imageops::resize(&digit, 84, 56, imageops::FilterType::Triangle)
        .save(d.join("wide.png"))
        .unwrap();
    let mut state = 7u64;
    let noise = GrayImage::from_fn(28, 28, |_, _| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        image::Luma([(state >> 56) as u8])
    });
    noise.save(d.join("noise.png")).unwrap();

    let r = shared_denoise_run().to_str().unwrap().to_string();
    let files = ["clear.png", "paper.png", "wide.png", "noise.png"];
    let mut args = vec!["denoise", "--run", &r, "-o", "out"];
    args.extend(files);
    let run = ae(d, &args).ok();
    // Transparency is composited onto the run's background (white): the transparent file
    // is the opaque one, bit for bit, not a black square.
    let out = |name: &str| d.join("out").join(format!("{name}-denoised.png"));
    let bytes = |p: &Path| image::open(p).unwrap().to_luma8().into_raw();
    assert_eq!(bytes(&out("clear")), bytes(&out("paper")));
    assert!(mean(&out("clear")) > 150.0, "mean {}", mean(&out("clear")));
    // The 3:2 file is stretched with a note, and its result has its own size.
    assert!(
        run.stderr.contains("wide.png is 56x84") && run.stderr.contains("aspect ratio not kept")
    );
    assert_eq!(dims(&out("wide")), (84, 56));
    // Only the noise is called unlike the training data.
    let unlike: Vec<&str> = run.stderr.lines().filter(|l| l.contains("looks unlike")).collect();
    assert_eq!(unlike.len(), 1, "{}", run.stderr);
    assert!(unlike[0].contains("noise.png") && unlike[0].contains("test images"), "{}", unlike[0]);
}

#[test]
fn denoise_refuses_broken_and_hostile_files_before_writing() {
    let dir = tempdir();
    digits(1)[0].0.save(dir.path().join("ok.png")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
    std::fs::write(dir.path().join("zero.png"), []).unwrap();
    // A PNG whose header declares 100000 x 100000 pixels (CRC checked by the decoder).
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut huge = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d".to_vec();
    huge.extend_from_slice(&ihdr);
    huge.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    std::fs::write(dir.path().join("huge.png"), huge).unwrap();

    let r = shared_denoise_run().to_str().unwrap().to_string();
    for (bad, needles) in [
        ("notes.txt", vec!["notes.txt", "not a readable image"]),
        ("zero.png", vec!["zero.png", "not a readable image"]),
        ("huge.png", vec!["huge.png", "limit"]),
        ("missing.png", vec!["missing.png"]),
    ] {
        ae(dir.path(), &["denoise", "--run", &r, "ok.png", bad, "-o", "out"]).fails_with(&needles);
    }
    assert!(!dir.path().join("out").exists(), "nothing is written when an input is bad");
    ae(dir.path(), &["denoise", "--run", &r, "ok.png", "-o", "out", "--add-noise=-1"])
        .fails_with(&["--add-noise must be a non-negative number"]);
}

/// One unreadable file stops a folder by default, naming it and the flag that leaves such
/// files out; with `--skip-unreadable` the run trains on the rest, lists the file, and
/// later commands read the folder the same way.
#[test]
fn an_unreadable_image_stops_the_folder_unless_skipped() {
    let dir = tempdir();
    let data = dir.path().join("faces");
    for (i, (img, label)) in digits(60).into_iter().enumerate() {
        let folder = data.join(if label % 2 == 0 { "even" } else { "odd" });
        std::fs::create_dir_all(&folder).unwrap();
        imageops::resize(&img, 12, 12, imageops::FilterType::Triangle)
            .save(folder.join(format!("{i}.png")))
            .unwrap();
    }
    std::fs::write(data.join("odd/cut.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let train = |out: &str, extra: &[&str]| {
        let flags = [&["--epochs", "1"], extra].concat();
        ae(dir.path(), &quick_train(&data, &dir.path().join(out), &flags))
    };
    train("stopped", &[]).fails_with(&[
        "cut.png is not a readable image",
        "train with --skip-unreadable to leave such files out",
    ]);
    assert!(!dir.path().join("stopped/model.json").exists());
    let run = train("kept", &["--skip-unreadable"]).ok();
    assert!(
        run.stderr.contains("note: left out 1 image file that cannot be read: "),
        "{}",
        run.stderr
    );
    let listed = std::fs::read_to_string(dir.path().join("kept/skipped-files.txt")).unwrap();
    assert!(listed.contains("odd/cut.png (unreadable: "), "{listed}");
    let eval = ae(dir.path(), &["eval", "--run", "kept", "--json"]).ok();
    let r: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
    let m = read_json(&dir.path().join("kept/model.json"));
    let seen =
        m["data"]["train_images"].as_u64().unwrap() + m["data"]["val_images"].as_u64().unwrap();
    assert_eq!(seen + r["images"].as_u64().unwrap(), 60, "every readable image, once");
    assert_eq!(m["model"]["input"]["skip_unreadable"], true);
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn a_folder_of_images_trains_and_evaluates_at_its_own_size() {
    let dir = tempdir();
    let data = dir.path().join("digits");
    // 20x20 digits in train/<label>/ and test/<label>/, plus a stray file.
    for (i, (img, label)) in digits(600).into_iter().enumerate() {
        let split = if i < 500 { "train" } else { "test" };
        let small = imageops::resize(&img, 20, 20, imageops::FilterType::Triangle);
        let folder = data.join(split).join(label.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        small.save(folder.join(format!("{i}.png"))).unwrap();
    }
    std::fs::write(data.join("train/README.txt"), "digits").unwrap();
    // Hidden files, as macOS leaves them, are skipped without a word.
    std::fs::write(data.join("train/.DS_Store"), "finder").unwrap();
    std::fs::write(data.join("test/3/.DS_Store"), "finder").unwrap();
    let out = dir.path().join("run");
    let run = ae(dir.path(), &quick_train(&data, &out, &["--epochs", "3", "--limit", "500"])).ok();
    assert!(
        run.stderr.matches("skipped 1 file that is not").count() == 1
            && run.stderr.contains("README.txt"),
        "the note once: {}",
        run.stderr
    );
    assert!(!run.stderr.contains(".DS_Store"), "{}", run.stderr);
    // The run lists it; later commands on the run do not say it again.
    let listed = std::fs::read_to_string(out.join("skipped-files.txt")).unwrap();
    assert!(listed.trim_end().ends_with("train/README.txt") && listed.lines().count() == 1);
    let manifest = read_json(&out.join("model.json"));
    assert_eq!(
        (
            manifest["model"]["input"]["height"].as_i64(),
            manifest["model"]["input"]["width"].as_i64()
        ),
        (Some(20), Some(20))
    );
    let eval = ae(dir.path(), &["eval", "--run", "run", "--json"]).ok();
    assert!(!eval.stderr.contains("skipped"), "{}", eval.stderr);
    let r: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
    assert_eq!(r["images"], 100);
    // Labels came from the folder names: the anomaly command can use them.
    ae(dir.path(), &["anomaly", "--run", "run", "--normal-classes", "1,2,3,4,5,6,7,8,9", "--json"])
        .ok();

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("a.txt"), "x").unwrap();
    ae(dir.path(), &quick_train(&empty, &dir.path().join("r2"), &[])).fails_with(&[
        "no train images in",
        "or a folder of .png/.jpg/.jpeg/.webp/.bmp/.tif/.tiff images",
    ]);
}

/// Label folders are the class names everywhere: recorded in the run, accepted by
/// `--normal-classes` and `--classes` (their codes as numbers still work), written in
/// the scores and the summary, and used to code a later folder that holds only some of
/// them. A class the scored rows lack is a note, not "does not occur".
#[test]
fn folder_names_are_the_class_names() {
    let dir = tempdir();
    let data = dir.path().join("photos");
    let class = |label: u8| match label {
        0 => "nature",
        1 => "people",
        _ => "things",
    };
    for (i, (img, label)) in digits(240).into_iter().enumerate() {
        let folder = data.join(class(label));
        std::fs::create_dir_all(&folder).unwrap();
        imageops::resize(&img, 12, 12, imageops::FilterType::Triangle)
            .save(folder.join(format!("{i}.png")))
            .unwrap();
    }
    // A notebook's hidden folder is not a class and shifts no code.
    std::fs::create_dir_all(data.join(".ipynb_checkpoints")).unwrap();
    ae(dir.path(), &quick_train(&data, &dir.path().join("run"), &["--epochs", "1"])).ok();
    let m = read_json(&dir.path().join("run/model.json"));
    assert_eq!(m["model"]["input"]["classes"], serde_json::json!(["nature", "people", "things"]));

    let anomaly = |extra: &[&str]| {
        let args = [&["anomaly", "--run", "run", "--json", "--no-baselines"], extra].concat();
        let out = ae(dir.path(), &args).ok();
        (serde_json::from_str::<serde_json::Value>(out.stdout.trim()).unwrap(), out.stderr)
    };
    let (by_name, _) = anomaly(&["--normal-classes", "nature", "-o", "named.csv"]);
    assert_eq!(by_name["normal_classes"], serde_json::json!(["nature"]));
    let (by_code, _) = anomaly(&["--normal-classes", "0"]);
    assert_eq!(by_code["roc_auc"], by_name["roc_auc"], "a code names the same class");
    let scores = std::fs::read_to_string(dir.path().join("named.csv")).unwrap();
    assert!(scores.starts_with("index,file,label,score"), "{scores}");
    let labels: std::collections::BTreeSet<&str> =
        scores.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert_eq!(labels, ["nature", "people", "things"].into());
    ae(dir.path(), &["anomaly", "--run", "run", "--normal-classes", "natur"])
        .fails_with(&["--normal-classes: unknown class 'natur'", "'nature', 'people', 'things'"]);

    // A new folder with people/ alone: coded by the run's list, not as class 0.
    let new = dir.path().join("new");
    copy_dir(&data.join("people"), &new.join("people"));
    let (only, stderr) = anomaly(&["--data", "new", "--normal-classes", "people,nature"]);
    assert!(stderr.contains("note: no scored row has the normal class nature"), "{stderr}");
    assert_eq!(only["normal_classes"], serde_json::json!(["people", "nature"]));
    let odd = dir.path().join("odd");
    copy_dir(&data.join("people"), &odd.join("cars"));
    let (_, stderr) = anomaly(&["--data", "odd"]);
    assert!(
        stderr.contains("the folder 'cars' in") && stderr.contains("read without labels"),
        "{stderr}"
    );

    // Training on some classes by name.
    let some = dir.path().join("some");
    let args = quick_train(&data, &some, &["--epochs", "1", "--classes", "people,things"]);
    ae(dir.path(), &args).ok();
    assert_eq!(read_json(&some.join("model.json"))["train"]["classes"], serde_json::json!([1, 2]));
}
