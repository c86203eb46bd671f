//! Downloading the public datasets: the mirrors and SHA-256 values of MNIST and
//! Fashion-MNIST, checking a file against them, and fetching one file over HTTP(S) into
//! place atomically.
//!
//! A file is accepted when either hash matches:
//! - the SHA-256 of the `.gz` archive as the dataset's authors published it, or
//! - the SHA-256 of its decompressed IDX content (one gzip member, nothing after it),
//!   which is what matters for training and survives recompression — Debian's
//!   `dataset-fashion-mnist`, which `scripts/setup.sh` uses, ships the same IDX bytes in
//!   different gzip archives.
//!
//! The archive hashes are the ones torchvision, TensorFlow Datasets and Keras pin (for
//! Fashion-MNIST both the current archives, whose MD5s Zalando's README lists, and an
//! earlier set); the content hashes are those of the decompressed official files, pinned
//! alike by many projects (for Fashion-MNIST they are also what Debian's package
//! decompresses to).

use super::idx::{self, IdxError};
use crate::atomic::with_temp_file;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// One of the four files of a dataset.
#[derive(Clone, Copy, Debug)]
pub struct FileSpec {
    /// The name on the mirrors and on disk, e.g. `train-images-idx3-ubyte.gz`.
    pub name: &'static str,
    /// SHA-256 of the published `.gz` archives (a dataset re-released with other gzip
    /// settings has more than one).
    pub archive_sha256: &'static [&'static str],
    /// SHA-256 of the decompressed IDX file.
    pub content_sha256: &'static str,
    /// Length of the decompressed IDX file in bytes.
    pub content_len: u64,
}

impl FileSpec {
    /// The most bytes a download may have: a gzip archive of `content_len` bytes is at
    /// most that plus its headers and stored-block overhead, so anything past this bound
    /// is a server sending something else.
    pub fn max_archive_len(&self) -> u64 {
        self.content_len + self.content_len / 100 + 64 * 1024
    }
}

/// A dataset that `ae-tch data fetch` knows.
#[derive(Clone, Copy, Debug)]
pub struct Dataset {
    pub name: &'static str,
    /// Where it goes when `--dir` is not given.
    pub default_dir: &'static str,
    /// Base URLs, tried in order; a file's URL is the base plus its name.
    pub mirrors: &'static [&'static str],
    pub files: [FileSpec; 4],
}

/// The full MNIST (60,000 train and 10,000 test digits). Not the embedded `data/mnist`,
/// which is a 10,000-digit subset, hence its own default folder.
pub const MNIST: Dataset = Dataset {
    name: "mnist",
    default_dir: "data/mnist-full",
    mirrors: &[
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    files: [
        FileSpec {
            name: "train-images-idx3-ubyte.gz",
            archive_sha256: &["440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"],
            content_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            content_len: 47_040_016,
        },
        FileSpec {
            name: "train-labels-idx1-ubyte.gz",
            archive_sha256: &["3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"],
            content_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            content_len: 60_008,
        },
        FileSpec {
            name: "t10k-images-idx3-ubyte.gz",
            archive_sha256: &["8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"],
            content_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            content_len: 7_840_016,
        },
        FileSpec {
            name: "t10k-labels-idx1-ubyte.gz",
            archive_sha256: &["f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"],
            content_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            content_len: 10_008,
        },
    ],
};

/// Fashion-MNIST (Zalando Research, MIT licence).
pub const FASHION_MNIST: Dataset = Dataset {
    name: "fashion-mnist",
    default_dir: "data/fashion-mnist",
    mirrors: &[
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ],
    files: [
        FileSpec {
            name: "train-images-idx3-ubyte.gz",
            archive_sha256: &[
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            ],
            content_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            content_len: 47_040_016,
        },
        FileSpec {
            name: "train-labels-idx1-ubyte.gz",
            archive_sha256: &[
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            ],
            content_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            content_len: 60_008,
        },
        FileSpec {
            name: "t10k-images-idx3-ubyte.gz",
            archive_sha256: &[
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            ],
            content_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            content_len: 7_840_016,
        },
        FileSpec {
            name: "t10k-labels-idx1-ubyte.gz",
            archive_sha256: &[
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
            ],
            content_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            content_len: 10_008,
        },
    ],
};

/// The server gave no HTTP response at all (name not resolved, connection refused or timed
/// out, TLS failure): the mirror is down for every file, not just this one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(String);

/// Which of a file's two hashes matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Matched {
    /// The bytes are the published archive.
    Archive,
    /// The archive differs, its decompressed content is the published one.
    Content,
}

/// Hex SHA-256 of everything `reader` yields, and how many bytes that was.
fn sha256_of(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let n = std::io::copy(&mut reader, &mut hasher)?;
    Ok((hex(&hasher.finalize()), n))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the file at `path` against `spec`; `archive_sha256` is the file's own hash when
/// the caller has it already (it was computed while downloading). The error says what
/// was found against what was expected; the caller names the file or URL.
pub fn verify(path: &Path, spec: &FileSpec, archive_sha256: Option<&str>) -> Result<Matched> {
    let open = || std::fs::File::open(path).with_context(|| format!("reading {}", path.display()));
    let own = match archive_sha256 {
        Some(h) => h.to_string(),
        None => {
            sha256_of(BufReader::new(open()?))
                .with_context(|| format!("reading {}", path.display()))?
                .0
        }
    };
    if spec.archive_sha256.contains(&own.as_str()) {
        return Ok(Matched::Archive);
    }
    // At most one byte past the expected length is inflated: a gzip bomb stops there.
    let limit = spec.content_len + 1;
    let content = match idx::gunzip_single(BufReader::new(open()?), |r| {
        Ok(sha256_of(r.take(limit))?)
    }) {
        Ok((h, n)) if h == spec.content_sha256 && n == spec.content_len => {
            return Ok(Matched::Content)
        }
        Ok((h, n)) => format!("content {h} ({n} bytes)"),
        Err(IdxError::Gzip(e)) => format!("no readable gzip content ({e})"),
        // Cut off at `limit`, the rest of the member counts as data after it.
        Err(IdxError::AfterGzip) => "data after its gzip stream, or content too long".to_string(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    bail!(
        "SHA-256 mismatch: found archive {own}, {content}; expected archive {} or content {} \
         ({} bytes)",
        spec.archive_sha256.join(" or "),
        spec.content_sha256,
        spec.content_len
    )
}

/// The HTTP client: redirects followed, proxies from the environment (`HTTPS_PROXY`,
/// `NO_PROXY`…), and timeouts that turn a stalled server into an error instead of a hang.
/// Each file gets a connection of its own: a kept one that the server closes just as the
/// next request goes down it fails that file with a reset (ureq does not retry it), and a
/// handshake per file costs nothing beside the download.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .user_agent(concat!("ae-tch/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections(0)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Whether `e` means no HTTP exchange with the server was possible at all (as opposed
/// to a server that answered badly).
fn is_unreachable(e: &ureq::Error) -> bool {
    use ureq::{Error, Timeout};
    match e {
        Error::HostNotFound | Error::ConnectionFailed | Error::Tls(_) | Error::Rustls(_) => true,
        Error::Timeout(t) => matches!(t, Timeout::Resolve | Timeout::Connect),
        // A request that fails on I/O before any response got no answer at all; a failed
        // DNS lookup arrives this way too (std reports it as an uncategorised I/O error).
        Error::Io(_) => true,
        _ => false,
    }
}

/// `base` + `name`, with exactly one slash between them.
pub fn file_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// A download slower than this on average, once it has run `MIN_SPEED_AFTER_S`, is given
/// up (a stalled one already fails after the agent's 60 s read timeout).
const MIN_BYTES_PER_S: u64 = 1000;
const MIN_SPEED_AFTER_S: u64 = 60;

/// Downloads `url` to `dest` (through a temporary file in the same folder, renamed only
/// once the bytes are complete and verified) and returns the file's size and which hash
/// matched. `progress(received, total)` is called as bytes arrive. On any failure
/// nothing is left at `dest` that was not there before.
pub fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    spec: &FileSpec,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(u64, Matched)> {
    with_temp_file(dest, |tmp| {
        let mut response = agent.get(url).call().map_err(|e| {
            if is_unreachable(&e) {
                Unreachable(e.to_string()).into()
            } else {
                anyhow::anyhow!("{e}")
            }
        })?;
        let total = response.body().content_length();
        let limit = spec.max_archive_len();
        if let Some(n) = total.filter(|&n| n > limit) {
            bail!("the server announces {n} bytes, more than the {limit} this file can have");
        }
        let mut body = response.body_mut().as_reader();
        let mut file = std::fs::File::create(tmp)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut received = 0u64;
        let so_far = |received: u64| match total {
            Some(total) => format!("{received} of {total} bytes"),
            None => format!("{received} bytes"),
        };
        let started = Instant::now();
        loop {
            let secs = started.elapsed().as_secs();
            if secs >= MIN_SPEED_AFTER_S && received < MIN_BYTES_PER_S * secs {
                bail!(
                    "the server sends under {} kB/s ({} in {secs} s)",
                    MIN_BYTES_PER_S / 1000,
                    so_far(received)
                );
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => bail!("the connection broke after {} ({e})", so_far(received)),
            };
            received += n as u64;
            if received > limit {
                bail!("the server sent more than the {limit} bytes this file can have");
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
            progress(received, total);
        }
        if total.is_some_and(|t| t != received) {
            bail!("the connection closed after {}", so_far(received));
        }
        let own = hex(&hasher.finalize());
        Ok((received, verify(tmp, spec, Some(&own))?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};

    fn gz(content: &[u8], level: u32) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(content).unwrap();
        e.finish().unwrap()
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    /// A spec whose archive is `content` compressed at level 6.
    fn spec_for(content: &[u8]) -> FileSpec {
        FileSpec {
            name: "x.gz",
            archive_sha256: Box::leak(Box::new([leak(sha256_of(&gz(content, 6)[..]).unwrap().0)])),
            content_sha256: leak(sha256_of(content).unwrap().0),
            content_len: content.len() as u64,
        }
    }

    #[test]
    fn sha256_matches_known_vectors() {
        // FIPS 180-2 test vectors.
        assert_eq!(
            sha256_of(&b"abc"[..]).unwrap().0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_of(&b""[..]).unwrap().0,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn accepts_the_archive_or_its_content_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        let content: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let spec = spec_for(&content);

        std::fs::write(&path, gz(&content, 6)).unwrap();
        assert_eq!(verify(&path, &spec, None).unwrap(), Matched::Archive);

        // Recompressed: other archive bytes, same content.
        let other = gz(&content, 1);
        assert_ne!(other, gz(&content, 6));
        std::fs::write(&path, &other).unwrap();
        assert_eq!(verify(&path, &spec, None).unwrap(), Matched::Content);

        // One content byte changed.
        let mut changed = content.clone();
        changed[1234] ^= 1;
        std::fs::write(&path, gz(&changed, 6)).unwrap();
        let err = format!("{:#}", verify(&path, &spec, None).unwrap_err());
        assert!(err.contains("SHA-256 mismatch") && err.contains(spec.content_sha256), "{err}");

        // Valid content followed by stray bytes, a truncated archive, not gzip at all.
        let mut trailing = gz(&content, 6);
        trailing.extend_from_slice(b"junk");
        std::fs::write(&path, &trailing).unwrap();
        let err = format!("{:#}", verify(&path, &spec, None).unwrap_err());
        assert!(err.contains("data after its gzip stream"), "{err}");
        // More content than expected (a gzip bomb would be): inflation stops past the end.
        let mut long = content.clone();
        long.extend(std::iter::repeat_n(0u8, 1 << 20));
        std::fs::write(&path, gz(&long, 6)).unwrap();
        let err = format!("{:#}", verify(&path, &spec, None).unwrap_err());
        assert!(err.contains("content too long"), "{err}");
        let full = gz(&content, 6);
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        let err = format!("{:#}", verify(&path, &spec, None).unwrap_err());
        assert!(err.contains("no readable gzip content"), "{err}");
        std::fs::write(&path, &content).unwrap();
        assert!(verify(&path, &spec, None).is_err());
    }

    #[test]
    fn tables_are_well_formed() {
        for set in [MNIST, FASHION_MNIST] {
            let names: Vec<&str> = set.files.iter().map(|f| f.name).collect();
            assert_eq!(names.len(), crate::data::IDX_FILES.len());
            for (f, idx_name) in set.files.iter().zip(crate::data::IDX_FILES) {
                assert_eq!(f.name, format!("{idx_name}.gz"));
                for h in f.archive_sha256.iter().chain([&f.content_sha256]) {
                    assert_eq!(h.len(), 64, "{}", f.name);
                    assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                }
            }
            assert!(set.mirrors.iter().all(|m| m.starts_with("http") && m.ends_with('/')));
        }
        assert_eq!(file_url("http://h/a/", "f.gz"), "http://h/a/f.gz");
        assert_eq!(file_url("http://h/a", "f.gz"), "http://h/a/f.gz");
    }
}
