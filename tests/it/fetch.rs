//! `ae-tch data fetch` against a local HTTP server on 127.0.0.1 that serves the files
//! scripts/setup.sh made (Debian's Fashion-MNIST), whole, corrupted, or cut off mid-file.

use crate::util::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// What the server does to the file it is told about.
#[derive(Clone, Copy)]
enum Fault {
    /// One byte in the middle flipped.
    Corrupt,
    /// The full Content-Length announced, half the bytes sent, the connection closed.
    CloseMidFile,
    /// No Content-Length, 100 kB of zeros, then the connection closed.
    Endless,
}

struct Server {
    url: String,
    /// The file names requested so far.
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

/// Serves the files of `dir` over HTTP/1.1, one connection at a time, each closed after
/// its response (a missing file's after the client's next request); `fault` spoils one
/// named file.
fn serve(dir: PathBuf, fault: Option<(&'static str, Fault)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/files/", listener.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = respond(stream, &dir, fault, &log);
        }
    });
    Server { url, hits }
}

fn respond(
    mut stream: TcpStream,
    dir: &Path,
    fault: Option<(&'static str, Fault)>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let name = path.rsplit('/').next().unwrap_or("").to_string();
    log.lock().unwrap().push(name.clone());
    let Ok(mut body) = std::fs::read(dir.join(&name)) else {
        // Kept alive (HTTP/1.1's default), then closed unanswered when a next request comes
        // on it, as a server may close an idle connection: a client that sends its next
        // request down a connection it kept gets a reset or an end of stream, not an
        // answer. A client that neither closes nor sends is waited for 10 s.
        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        reader.read_line(&mut String::new())?;
        return Ok(());
    };
    let full = body.len();
    let mut length = format!("Content-Length: {full}\r\n");
    match fault {
        Some((file, Fault::Corrupt)) if file == name => body[full / 2] ^= 0xff,
        Some((file, Fault::CloseMidFile)) if file == name => body.truncate(full / 2),
        Some((file, Fault::Endless)) if file == name => {
            body = vec![0; 100_000];
            length.clear();
        }
        _ => {}
    }
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\n{length}Connection: close\r\n\r\n"
    )?;
    stream.write_all(&body)
}

/// The Fashion-MNIST files scripts/setup.sh extracted from Debian's package.
fn fashion() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    assert!(dir.join("t10k-labels-idx1-ubyte.gz").is_file(), "run scripts/setup.sh");
    dir
}

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// `ae-tch data fetch ARGS` with no proxy from the environment in the way of 127.0.0.1.
fn fetch(cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.arg("data").arg("fetch").args(args).current_dir(cwd);
    for var in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    {
        cmd.env_remove(var);
    }
    cmd.output().expect("spawn ae-tch").into()
}

fn statuses(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).expect(json);
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["status"].as_str().unwrap().into(), f["matched"].to_string()))
        .collect()
}

/// Leftover temporary files in `dir` (there must never be any).
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn fetch_downloads_verifies_and_then_skips_what_is_present() {
    let tmp = tempdir();
    let d = tmp.path();
    let server = serve(fashion(), None);
    let out = fetch(d, &["fashion-mnist", "--dir", "fm", "--mirror", &server.url, "--json"]).ok();
    // Debian recompressed the archives, so the content hash is the one that matches.
    let downloaded = ("downloaded".to_string(), "\"content\"".to_string());
    assert_eq!(statuses(&out.stdout), vec![downloaded; 4], "{}", out.stdout);
    for f in FILES {
        let got = std::fs::read(d.join("fm").join(f)).unwrap();
        assert!(got == std::fs::read(fashion().join(f)).unwrap(), "{f} differs");
    }
    assert_eq!(server.hits(), FILES);
    assert!(temp_files(&d.join("fm")).is_empty());

    // Again: everything is present and valid, nothing is requested.
    let out = fetch(d, &["fashion-mnist", "--dir", "fm", "--mirror", &server.url]).ok();
    assert_eq!(out.stdout.matches("present, content SHA-256 ok").count(), 4, "{}", out.stdout);
    assert_eq!(server.hits().len(), 4);

    // The fetched folder is a dataset the other commands read.
    let info = ae(d, &["data", "info", "fm"]).ok();
    assert!(info.stdout.contains("train   60000 images 28x28"), "{}", info.stdout);
}

#[test]
fn fetch_rejects_a_corrupted_file_and_a_connection_closed_mid_file() {
    let tmp = tempdir();
    let d = tmp.path();
    let fm = d.join("fm");
    std::fs::create_dir(&fm).unwrap();
    // The image files are already in place, so only the small label files travel.
    for f in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"] {
        std::fs::copy(fashion().join(f), fm.join(f)).unwrap();
    }
    let target = "t10k-labels-idx1-ubyte.gz";
    let args = |url: &str| -> Vec<String> {
        ["fashion-mnist", "--dir", "fm", "--mirror", url].map(String::from).to_vec()
    };
    let run = |url: &str| {
        let a = args(url);
        fetch(d, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let corrupt = serve(fashion(), Some((target, Fault::Corrupt)));
    let out = run(&corrupt.url).fails_with(&[
        "1 of 4 files of fashion-mnist could not be fetched",
        &format!("{}{target}", corrupt.url),
        "SHA-256 mismatch",
    ]);
    assert!(out.stdout.contains("FAILED"), "{}", out.stdout);
    assert_eq!(corrupt.hits(), ["train-labels-idx1-ubyte.gz", target]);
    assert!(!fm.join(target).exists(), "a file that failed its check was kept");
    assert!(temp_files(&fm).is_empty());

    let cut = serve(fashion(), Some((target, Fault::CloseMidFile)));
    let len = std::fs::metadata(fashion().join(target)).unwrap().len();
    run(&cut.url).fails_with(&[target, &format!("after {} of {len} bytes", len / 2)]);
    assert!(!fm.join(target).exists(), "a partial download was kept");
    assert!(temp_files(&fm).is_empty());

    let endless = serve(fashion(), Some((target, Fault::Endless)));
    run(&endless.url).fails_with(&[target, "the server sent more than the 75644 bytes"]);
    assert!(!fm.join(target).exists() && temp_files(&fm).is_empty());

    // A present but corrupted copy is replaced once a good one arrives; a mirror that
    // refuses the connection is passed over for the next, and not asked again.
    std::fs::remove_file(fm.join("train-labels-idx1-ubyte.gz")).unwrap();
    let mut bytes = std::fs::read(fashion().join(target)).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(fm.join(target), &bytes).unwrap();
    let good = serve(fashion(), None);
    let out = fetch(
        d,
        &["fashion-mnist", "--dir", "fm", "--mirror", "http://127.0.0.1:1/", "--mirror", &good.url],
    )
    .ok();
    assert!(out.stderr.contains("present but fails its check"), "{}", out.stderr);
    assert_eq!(out.stderr.matches("trying the next mirror").count(), 1, "{}", out.stderr);
    for f in FILES {
        assert!(std::fs::read(fm.join(f)).unwrap() == std::fs::read(fashion().join(f)).unwrap());
    }
    assert_eq!(good.hits(), ["train-labels-idx1-ubyte.gz", target]);
}

#[test]
fn fetch_refuses_files_of_another_dataset_and_bad_mirrors() {
    let tmp = tempdir();
    let d = tmp.path();
    // The embedded 10,000-digit subset is not the official MNIST.
    let server = serve(mnist(), None);
    let out = fetch(d, &["mnist", "--dir", "m", "--mirror", &server.url, "--json"])
        .fails_with(&["4 of 4 files of mnist could not be fetched", "SHA-256 mismatch"]);
    assert_eq!(statuses(&out.stdout), vec![("failed".to_string(), "null".to_string()); 4]);
    // Nothing landed, so the folder the command made is gone again.
    assert!(!d.join("m").exists());

    // A server that answers 404 is not "unreachable": its answer is the error.
    let empty = tempdir();
    let server = serve(empty.path().to_path_buf(), None);
    let out = fetch(d, &["mnist", "--dir", "m", "--mirror", &server.url])
        .fails_with(&["4 of 4 files of mnist could not be fetched into m:", "404"]);
    assert!(!out.stderr.contains("no mirror could be reached"), "{}", out.stderr);

    // A mirror that refuses connections is given up on after the first file.
    fetch(d, &["fashion-mnist", "--dir", "x", "--mirror", "http://127.0.0.1:1/"]).fails_with(&[
        "4 of 4 files of fashion-mnist could not be fetched into x: no mirror could be reached",
        "http://127.0.0.1:1/: ",
    ]);
    // Offline: a name that does not resolve (.invalid never does, RFC 6761) counts as no
    // response too. One short line per mirror, said once, and no empty --dir left behind.
    let dead = "http://ae-tch-test.invalid/mnist/";
    let out =
        fetch(d, &["mnist", "--dir", "off", "--mirror", dead, "--mirror", "http://127.0.0.1:1/"])
            .fails_with(&["no mirror could be reached", dead]);
    assert_eq!(out.stderr.matches("trying the next mirror").count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("writing"), "{}", out.stderr);
    assert!(out.stderr.lines().all(|l| l.len() < 200), "{}", out.stderr);
    assert!(!d.join("off").exists(), "an empty --dir was left behind");
    fetch(d, &["mnist", "--mirror", "ftp://example.org/mnist/"])
        .fails_with(&["--mirror ftp://example.org/mnist/", "http:// or https://"]);
    fetch(d, &["cifar"]).fails_with(&["cifar"]);
}
