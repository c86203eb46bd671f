//! IDX files (the MNIST container): big-endian header, unsigned-byte payload, read raw or
//! gzip-compressed with every size checked before it is trusted.

use flate2::bufread::GzDecoder;
use std::io::{self, BufRead, Read};
use std::path::Path;

/// Largest payload we accept: well above Fashion-MNIST's 47 MB, far below what a hostile
/// header could ask for.
pub const MAX_PAYLOAD_BYTES: u64 = 2 << 30;

/// The only element type ae-tch reads: unsigned bytes.
const TYPE_U8: u8 = 0x08;

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("corrupt gzip data: {0}")]
    Gzip(io::Error),
    #[error("file is empty")]
    Empty,
    #[error("header is truncated: {found} of {expected} bytes")]
    TruncatedHeader { expected: usize, found: usize },
    #[error("not an IDX file: magic bytes {found:02x?}, expected [00, 00, 08, {dims:02x}]")]
    BadMagic { found: [u8; 4], dims: u8 },
    #[error("unsupported IDX element type 0x{0:02x}: only unsigned bytes (0x08) are supported")]
    UnsupportedType(u8),
    #[error("expected an IDX file with {expected} dimension(s), the header declares {found}")]
    WrongRank { expected: u8, found: u8 },
    #[error("header declares dimensions {dims:?}, {bytes} bytes of data, more than the {limit}-byte limit")]
    TooLarge { dims: Vec<u32>, bytes: u128, limit: u64 },
    #[error("truncated: header declares {expected} bytes of data, the file holds {found}")]
    Truncated { expected: u64, found: u64 },
    #[error("trailing data: more than the {expected} bytes the header declares")]
    TrailingData { expected: u64 },
    #[error("data after the end of the gzip stream (a second gzip member or stray bytes)")]
    AfterGzip,
}

/// A parsed IDX file: its dimensions and the bytes in row-major order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file with exactly `rank` dimensions; gzip is detected by its magic bytes,
/// not the file name.
pub fn read_file(path: &Path, rank: u8) -> Result<IdxArray, IdxError> {
    let mut file = std::fs::File::open(path)?;
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic)?;
    let head = io::Cursor::new(magic[..got].to_vec()).chain(file);
    if got == 2 && magic == [0x1f, 0x8b] {
        // One gzip member whose content is exactly one IDX file: `parse` reads until the
        // member ends (or one byte past the declared size), then nothing may follow.
        gunzip_single(io::BufReader::new(head), |content| parse(content, rank))
    } else {
        parse(head, rank)
    }
}

/// Hands `read` the content of a single-member gzip stream; anything after that member
/// (a second member or stray bytes) is refused with [`IdxError::AfterGzip`], and a read
/// error inside the member becomes [`IdxError::Gzip`].
pub fn gunzip_single<R: BufRead, T>(
    mut input: R,
    read: impl FnOnce(&mut dyn Read) -> Result<T, IdxError>,
) -> Result<T, IdxError> {
    let out = read(&mut GzDecoder::new(&mut input)).map_err(|e| match e {
        IdxError::Io(io) => IdxError::Gzip(io),
        other => other,
    })?;
    if !input.fill_buf()?.is_empty() {
        return Err(IdxError::AfterGzip);
    }
    Ok(out)
}

/// Parses an uncompressed IDX stream with exactly `rank` dimensions.
pub fn parse<R: Read>(mut reader: R, rank: u8) -> Result<IdxArray, IdxError> {
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic)?;
    if got == 0 {
        return Err(IdxError::Empty);
    }
    if got < 4 || magic[0] != 0 || magic[1] != 0 {
        return Err(IdxError::BadMagic { found: magic, dims: rank });
    }
    if magic[2] != TYPE_U8 {
        return Err(IdxError::UnsupportedType(magic[2]));
    }
    if magic[3] != rank {
        return Err(IdxError::WrongRank { expected: rank, found: magic[3] });
    }
    let header_len = 4 * rank as usize;
    let mut header = vec![0u8; header_len];
    let got = read_up_to(&mut reader, &mut header)?;
    if got < header_len {
        return Err(IdxError::TruncatedHeader { expected: 4 + header_len, found: 4 + got });
    }
    let dims: Vec<u32> =
        header.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
    let bytes: u128 = dims.iter().map(|&d| d as u128).product();
    if bytes > MAX_PAYLOAD_BYTES as u128 {
        return Err(IdxError::TooLarge { dims, bytes, limit: MAX_PAYLOAD_BYTES });
    }
    let expected = bytes as u64;
    // Read at most one byte more than declared, growing the buffer as data actually
    // arrives: a header that lies about its size never makes us allocate for it.
    let mut data = Vec::new();
    reader.by_ref().take(expected + 1).read_to_end(&mut data)?;
    let found = data.len() as u64;
    if found < expected {
        return Err(IdxError::Truncated { expected, found });
    }
    if found > expected {
        return Err(IdxError::TrailingData { expected });
    }
    Ok(IdxArray { dims: dims.into_iter().map(|d| d as usize).collect(), data })
}

/// Serialises an unsigned-byte IDX file (uncompressed).
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Fills as much of `buf` as the stream holds; returns how many bytes were read.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use proptest::prelude::*;

    proptest! {
        // Fuzzing by property: any bytes, raw or gzip, parse to a value or an error —
        // never a panic, and never an array that disagrees with its header.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("IDX_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
        ))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), rank in 0u8..5) {
            if let Ok(a) = parse(&bytes[..], rank) {
                prop_assert_eq!(a.dims.len(), rank as usize);
                prop_assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
            }
        }

        #[test]
        fn mutated_valid_files_never_panic(
            n in 0u32..6,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            compress in any::<bool>(),
        ) {
            let mut bytes = images(n);
            for (at, v) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *v;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            std::fs::write(&path, if compress { gzip(&bytes) } else { bytes.clone() }).unwrap();
            let from_file = read_file(&path, 3);
            if let Ok(a) = &from_file {
                prop_assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
                prop_assert_eq!(&encode(&a.dims.iter().map(|&d| d as u32).collect::<Vec<_>>(), &a.data), &bytes);
            }
            // The file reader and the stream parser agree on raw bytes.
            if !compress {
                prop_assert_eq!(from_file.is_ok(), parse(&bytes[..], 3).is_ok());
            }
        }
    }
    use std::io::Write;

    fn images(n: u32) -> Vec<u8> {
        let data: Vec<u8> = (0..n * 4).map(|i| i as u8).collect();
        encode(&[n, 2, 2], &data)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn parses_a_valid_file() {
        let arr = parse(&images(3)[..], 3).unwrap();
        assert_eq!(arr.dims, vec![3, 2, 2]);
        assert_eq!(arr.data, (0..12).collect::<Vec<u8>>());
        let labels = parse(&encode(&[2], &[7, 9])[..], 1).unwrap();
        assert_eq!((labels.dims, labels.data), (vec![2], vec![7, 9]));
    }

    #[test]
    fn truncation_at_every_cut_point_is_an_error() {
        let full = images(3);
        for cut in 0..full.len() {
            let err = parse(&full[..cut], 3).unwrap_err();
            let ok = matches!(
                err,
                IdxError::Empty
                    | IdxError::BadMagic { .. }
                    | IdxError::WrongRank { .. }
                    | IdxError::UnsupportedType(_)
                    | IdxError::TruncatedHeader { .. }
                    | IdxError::Truncated { .. }
            );
            assert!(ok, "cut {cut}: {err}");
        }
        let err = parse(&full[..full.len() - 5], 3).unwrap_err().to_string();
        assert_eq!(err, "truncated: header declares 12 bytes of data, the file holds 7");
    }

    #[test]
    fn wrong_magic_type_and_rank_are_named() {
        let mut bad = images(1);
        bad[0] = 0x50;
        assert!(matches!(parse(&bad[..], 3), Err(IdxError::BadMagic { .. })));
        let mut float = images(1);
        float[2] = 0x0d;
        assert_eq!(
            parse(&float[..], 3).unwrap_err().to_string(),
            "unsupported IDX element type 0x0d: only unsigned bytes (0x08) are supported"
        );
        assert!(matches!(
            parse(&images(1)[..], 1),
            Err(IdxError::WrongRank { expected: 1, found: 3 })
        ));
    }

    #[test]
    fn huge_dimensions_fail_before_allocating() {
        // 2^31 images of 28x28: about 1.7 TB if trusted.
        let header = encode(&[1 << 31, 28, 28], &[]);
        let err = parse(&header[..], 3).unwrap_err();
        assert!(matches!(err, IdxError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("[2147483648, 28, 28]"), "{err}");
        // Just under the cap but with no data: reported as truncated, not allocated.
        let header = encode(&[1 << 20, 32, 32], &[]);
        assert!(matches!(parse(&header[..], 3), Err(IdxError::Truncated { found: 0, .. })));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut extra = images(2);
        extra.push(0);
        assert!(matches!(parse(&extra[..], 3), Err(IdxError::TrailingData { expected: 8 })));
    }

    #[test]
    fn reads_gzip_and_raw_files_and_reports_corrupt_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        let gz = dir.path().join("x.gz");
        std::fs::write(&raw, images(2)).unwrap();
        std::fs::write(&gz, gzip(&images(2))).unwrap();
        assert_eq!(read_file(&raw, 3).unwrap(), read_file(&gz, 3).unwrap());

        let mut corrupt = gzip(&images(2));
        let n = corrupt.len();
        corrupt.truncate(n - 10);
        std::fs::write(&gz, &corrupt).unwrap();
        let err = read_file(&gz, 3).unwrap_err();
        assert!(matches!(err, IdxError::Gzip(_)), "{err}");

        std::fs::write(&raw, []).unwrap();
        assert!(matches!(read_file(&raw, 3), Err(IdxError::Empty)));
    }

    #[test]
    fn concatenated_gzip_members_and_bytes_after_the_stream_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x.gz");
        for tail in [gzip(&images(2)), gzip(b""), b"junk".to_vec()] {
            let mut bytes = gzip(&images(2));
            bytes.extend_from_slice(&tail);
            std::fs::write(&gz, &bytes).unwrap();
            let err = read_file(&gz, 3).unwrap_err();
            assert!(matches!(err, IdxError::AfterGzip), "{err}");
        }
        // Two members that together make one valid file: still refused, not joined.
        let full = images(2);
        let mut split = gzip(&full[..20]);
        split.extend_from_slice(&gzip(&full[20..]));
        std::fs::write(&gz, &split).unwrap();
        assert!(matches!(read_file(&gz, 3), Err(IdxError::Truncated { .. })));
    }

    #[test]
    fn a_gzip_bomb_is_cut_off_after_the_declared_size() {
        // 100 MB of zeros behind a header that declares 2 images of 2x2: about 100 kB
        // compressed. Reading stops one byte past the declared 8 bytes.
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("bomb.gz");
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&encode(&[2, 2, 2], &[0; 8])).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            enc.write_all(&zeros).unwrap();
        }
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let start = std::time::Instant::now();
        let err = read_file(&gz, 3).unwrap_err();
        assert!(matches!(err, IdxError::TrailingData { expected: 8 }), "{err}");
        assert!(start.elapsed().as_secs_f64() < 1.0, "it did not decompress everything");
    }
}
