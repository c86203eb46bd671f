//! NumPy `.npy` (format 1.0) writer for 2-D little-endian f64 arrays, so `np.load` reads
//! what `ae-tch encode` writes.

/// Serialises a row-major `rows × cols` matrix.
pub fn encode_f64(rows: usize, cols: usize, values: &[f64]) -> Vec<u8> {
    assert_eq!(values.len(), rows * cols, "npy: shape does not match the data");
    let mut out = header_f64(rows, cols, values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The file's start (magic, version, header) for a `rows × cols` f64 matrix, with room
/// for `data` more bytes: the values follow, little-endian, row by row.
pub fn header_f64(rows: usize, cols: usize, data: usize) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.extend(std::iter::repeat_n(' ', unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_data_follows() {
        let bytes = encode_f64(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(header.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with('\n'));
        let data = &bytes[10 + hlen..];
        assert_eq!(data.len(), 48);
        assert_eq!(f64::from_le_bytes(data[40..48].try_into().unwrap()), 6.5);
    }
}
