//! `.npy` arrays (NumPy's format 1.0–3.0, every numeric dtype, either byte order, C or
//! Fortran order) and a 2-D array with its 1-D labels as a `Table`.

use super::{Missing, Table, TableError};
use crate::data::idx::MAX_PAYLOAD_BYTES;

/// A `.npy` array of numbers: its shape and its values in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<u64>,
    pub values: Vec<f64>,
}

/// The element types read: (descr without byte order, bytes per element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    F16,
    Int(u8),
    Uint(u8),
    Bool,
}

impl Elem {
    fn parse(descr: &str) -> Option<(Elem, bool)> {
        let (order, code) = descr.split_at(descr.len().min(1));
        let big = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return None,
        };
        let elem = match code {
            "f2" => Elem::F16,
            "f4" => Elem::F32,
            "f8" => Elem::F64,
            "i1" | "i2" | "i4" | "i8" => Elem::Int(code[1..].parse().ok()?),
            "u1" | "u2" | "u4" | "u8" => Elem::Uint(code[1..].parse().ok()?),
            "b1" => Elem::Bool,
            _ => return None,
        };
        Some((elem, big))
    }

    fn size(self) -> usize {
        match self {
            Elem::F16 => 2,
            Elem::F32 => 4,
            Elem::F64 => 8,
            Elem::Int(n) | Elem::Uint(n) => n as usize,
            Elem::Bool => 1,
        }
    }

    fn value(self, b: &[u8]) -> f64 {
        let mut le = [0u8; 8];
        le[..b.len()].copy_from_slice(b);
        let raw = u64::from_le_bytes(le);
        match self {
            Elem::F16 => f16_to_f64(raw as u16),
            Elem::F32 => f32::from_bits(raw as u32) as f64,
            Elem::F64 => f64::from_bits(raw),
            Elem::Uint(_) => raw as f64,
            Elem::Int(n) => {
                let shift = 64 - 8 * n as u32;
                ((raw << shift) as i64 >> shift) as f64
            }
            Elem::Bool => (raw != 0) as u8 as f64,
        }
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Parses a `.npy` file (format 1.0–3.0) of a numeric type, C or Fortran order, either
/// byte order; the values come back row-major.
pub fn read_npy(bytes: &[u8]) -> Result<NpyArray, TableError> {
    if bytes.len() < 8 || &bytes[..6] != b"\x93NUMPY" {
        return Err(TableError::NotNpy);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => return Err(TableError::NpyVersion(major, minor)),
    };
    let start = 8 + len_bytes;
    let header_len = match bytes.get(8..start) {
        Some(b) if len_bytes == 2 => u16::from_le_bytes([b[0], b[1]]) as usize,
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
        None => return Err(TableError::NpyTruncatedHeader),
    };
    let header = bytes.get(start..start + header_len).ok_or(TableError::NpyTruncatedHeader)?;
    let header = match (std::str::from_utf8(header), utf8) {
        (Ok(h), true) => h,
        (Ok(h), false) if h.is_ascii() => h,
        _ => return Err(TableError::NpyHeader("it is not text".into())),
    };
    let header = Header::parse(header).map_err(TableError::NpyHeader)?;
    let (elem, big) = Elem::parse(&header.descr).ok_or(TableError::NpyType(header.descr))?;
    let count = header.shape.iter().try_fold(1u128, |n, &d| n.checked_mul(d as u128));
    let data_bytes = count.and_then(|n| n.checked_mul(elem.size() as u128)).unwrap_or(u128::MAX);
    if data_bytes > MAX_PAYLOAD_BYTES as u128 {
        return Err(TableError::NpyTooLarge {
            shape: header.shape,
            bytes: data_bytes,
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let data = &bytes[start + header_len..];
    if data.len() as u128 != data_bytes {
        return Err(TableError::NpyLength {
            shape: header.shape,
            expected: data_bytes as u64,
            found: data.len() as u64,
        });
    }
    let size = elem.size();
    let mut values: Vec<f64> = data
        .chunks_exact(size)
        .map(|c| {
            if big {
                let mut r = c.to_vec();
                r.reverse();
                elem.value(&r)
            } else {
                elem.value(c)
            }
        })
        .collect();
    if header.fortran_order && header.shape.len() == 2 {
        let (r, c) = (header.shape[0] as usize, header.shape[1] as usize);
        let mut t = vec![0.0; values.len()];
        for (k, v) in values.iter().enumerate() {
            t[(k % r) * c + k / r] = *v;
        }
        values = t;
    } else if header.fortran_order && header.shape.len() > 2 {
        return Err(TableError::NpyRank { expected: "1-D or 2-D", found: header.shape });
    }
    Ok(NpyArray { shape: header.shape, values })
}

/// The `.npy` header: a Python dict literal with exactly these three keys.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

impl Header {
    fn parse(text: &str) -> Result<Header, String> {
        let body = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}'));
        let body = body.ok_or("it is not a {...} dictionary")?;
        let quoted = |key: &str| -> Result<&str, String> {
            let at = body.find(&format!("'{key}'")).ok_or(format!("no '{key}' key"))?;
            let rest = body[at + key.len() + 2..].trim_start();
            rest.strip_prefix(':').map(str::trim_start).ok_or(format!("no value for '{key}'"))
        };
        let descr = quoted("descr")?;
        let descr = match descr.strip_prefix('\'').and_then(|d| d.split_once('\'')) {
            Some((d, _)) => d.to_string(),
            // A structured dtype is a list of fields.
            None => descr.chars().take_while(|&c| c != ',').collect(),
        };
        let fortran = quoted("fortran_order")?;
        let fortran_order = if fortran.starts_with("True") {
            true
        } else if fortran.starts_with("False") {
            false
        } else {
            return Err("fortran_order is neither True nor False".into());
        };
        let shape = quoted("shape")?;
        let inner = shape
            .strip_prefix('(')
            .and_then(|s| s.split_once(')'))
            .map(|(s, _)| s)
            .ok_or("the shape is not a tuple")?;
        let shape = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('L').parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("the shape ({inner}) is not a tuple of sizes"))?;
        Ok(Header { descr, fortran_order, shape })
    }
}

/// A 2-D `.npy` array as a table (columns `x0`, `x1`, ...), with labels from a 1-D
/// integer array of the same length. NaN is a missing value, under the `missing` policy
/// as in a CSV; infinities are refused.
pub fn npy_table(
    data: NpyArray,
    labels: Option<NpyArray>,
    missing: Missing,
) -> Result<Table, TableError> {
    let [rows, cols] = data.shape[..] else {
        return Err(TableError::NpyRank { expected: "2-D (rows × features)", found: data.shape });
    };
    if rows == 0 || cols == 0 {
        return Err(TableError::NpyRank { expected: "non-empty 2-D", found: data.shape });
    }
    let mut values = Vec::with_capacity(data.values.len());
    for (k, &v) in data.values.iter().enumerate() {
        if v.is_nan() {
            values.push(f32::NAN);
        } else if !v.is_finite() || v.abs() > f32::MAX as f64 {
            let (row, column) = (k / cols as usize, k % cols as usize);
            return Err(TableError::NpyNotFinite { row, column, value: v });
        } else {
            values.push(v as f32);
        }
    }
    let labels = match labels {
        None => None,
        Some(l) => {
            if l.shape != [rows] {
                return Err(TableError::NpyRank {
                    expected: "1-D label array with one label per data row",
                    found: l.shape,
                });
            }
            let text = l.values.iter().enumerate().map(|(index, &value)| {
                if value.fract() == 0.0 && value.abs() < 2f64.powi(53) {
                    Ok(format!("{}", value as i64))
                } else {
                    Err(TableError::NpyLabel { index, value })
                }
            });
            Some(text.collect::<Result<Vec<_>, _>>()?)
        }
    };
    let columns = (0..cols).map(|i| format!("x{i}")).collect();
    let ids = (0..rows as usize).collect();
    let (categories, unseen) = (Vec::new(), None);
    let table = Table { values, columns, labels, ids, dropped: 0, files: None, categories, unseen };
    without_gaps(table, missing)
}

/// `table` after the `missing` policy for its NaN values: refused with a count, their rows
/// dropped, or (for a series to fill) kept.
fn without_gaps(table: Table, missing: Missing) -> Result<Table, TableError> {
    let d = table.width();
    let gap_rows: Vec<usize> = (0..table.rows())
        .filter(|&r| table.values[r * d..(r + 1) * d].iter().any(|v| v.is_nan()))
        .collect();
    let Some(&first) = gap_rows.first() else { return Ok(table) };
    match missing {
        Missing::Interpolate => Ok(table),
        Missing::Refuse => {
            let cells = table.values.iter().filter(|v| v.is_nan()).count();
            let column = table.values[first * d..].iter().position(|v| v.is_nan()).unwrap_or(0);
            let at = format!("row {first}, column 'x{column}' (NaN)");
            Err(TableError::MissingValues { cells, rows: gap_rows.len(), at })
        }
        Missing::Drop if gap_rows.len() == table.rows() => Err(TableError::AllDropped),
        Missing::Drop => {
            let kept: Vec<usize> =
                (0..table.rows()).filter(|r| gap_rows.binary_search(r).is_err()).collect();
            Ok(Table { dropped: gap_rows.len(), ..table.select(&kept) })
        }
    }
}

/// A NumPy `.npz` archive (`np.savez`, `np.savez_compressed`: a zip of `.npy` members) as
/// features and labels: the features are the member `x` (or `X`), else `arr_0` (the first
/// array `np.savez` was given), else the only 2-D array; the labels are `y` (or `labels`),
/// else `arr_1` beside `arr_0`, if present.
pub fn read_npz(bytes: &[u8]) -> Result<(NpyArray, Option<NpyArray>), TableError> {
    let bad = |what: String| TableError::Io(std::io::Error::other(what));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a .npz (zip) archive: {e}")))?;
    let mut arrays = Vec::new();
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| bad(format!("member {i}: {e}")))?;
        let Some(name) = member.name().strip_suffix(".npy").map(str::to_string) else { continue };
        if member.size() > MAX_PAYLOAD_BYTES {
            return Err(bad(format!("member {name}.npy is {} bytes, too large", member.size())));
        }
        // The declared size may lie: read at most one byte past the limit.
        let mut data = Vec::with_capacity(member.size() as usize);
        let limit = MAX_PAYLOAD_BYTES + 1;
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut member, limit), &mut data)
            .map_err(|e| bad(format!("member {name}.npy: {e}")))?;
        if data.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(bad(format!("member {name}.npy expands past {MAX_PAYLOAD_BYTES} bytes")));
        }
        let array = read_npy(&data).map_err(|e| {
            let e = e.to_string();
            bad(format!("member {name}.npy: {}", e.strip_prefix(".npy: ").unwrap_or(&e)))
        })?;
        arrays.push((name, array));
    }
    let take = |arrays: &mut Vec<(String, NpyArray)>, names: &[&str]| {
        let at = arrays.iter().position(|(n, _)| names.contains(&n.as_str()))?;
        Some(arrays.remove(at))
    };
    let features = take(&mut arrays, &["x", "X", "arr_0"]).or_else(|| {
        let two_d: Vec<usize> =
            (0..arrays.len()).filter(|&i| arrays[i].1.shape.len() == 2).collect();
        (two_d.len() == 1).then(|| arrays.remove(two_d[0]))
    });
    let Some((name, features)) = features else {
        let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
        return Err(bad(format!(
            "no features: expected an array named x (or arr_0, or a single 2-D array), found [{}]",
            names.join(", ")
        )));
    };
    let label_names: &[&str] =
        if name == "arr_0" { &["y", "labels", "arr_1"] } else { &["y", "labels"] };
    Ok((features, take(&mut arrays, label_names).map(|(_, l)| l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file as numpy writes it (format 1.0, header padded to 64 bytes).
    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }

    #[test]
    fn npy_reads_every_numeric_type_and_order() {
        let f4 = bytes(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], f32::to_le_bytes);
        let a = read_npy(&npy("<f4", false, "(2, 3)", &f4)).unwrap();
        assert_eq!(
            (a.shape.as_slice(), a.values.as_slice()),
            (&[2, 3][..], &[1., 2., 3., 4., 5., 6.][..])
        );
        // Fortran order: the same matrix stored column by column.
        let cols = bytes(&[1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0], f64::to_le_bytes);
        let b = read_npy(&npy("<f8", true, "(2, 3)", &cols)).unwrap();
        assert_eq!(b.values, a.values);
        let be = bytes(&[-2i16, 300], i16::to_be_bytes);
        assert_eq!(read_npy(&npy(">i2", false, "(2,)", &be)).unwrap().values, [-2.0, 300.0]);
        let u = read_npy(&npy("|u1", false, "(3,)", &[0, 7, 255])).unwrap();
        assert_eq!(u.values, [0.0, 7.0, 255.0]);
        let i8s = bytes(&[-5i64, 9], i64::to_le_bytes);
        assert_eq!(read_npy(&npy("<i8", false, "(2,)", &i8s)).unwrap().values, [-5.0, 9.0]);
        let h = bytes(&[0x3c00u16, 0xc000], u16::to_le_bytes); // 1.0, -2.0 in float16
        assert_eq!(read_npy(&npy("<f2", false, "(2,)", &h)).unwrap().values, [1.0, -2.0]);
        let t = npy_table(
            a,
            Some(read_npy(&npy("|u1", false, "(2,)", &[3, 1])).unwrap()),
            Missing::Refuse,
        )
        .unwrap();
        assert_eq!(t.columns, ["x0", "x1", "x2"]);
        assert_eq!(t.labels.unwrap(), ["3", "1"]);
    }

    #[test]
    fn npy_refuses_what_it_cannot_trust() {
        let f4 = bytes(&[1.0f32, 2.0], f32::to_le_bytes);
        let err = |b: Vec<u8>| read_npy(&b).unwrap_err().to_string();
        assert!(err(b"PK\x03\x04 a zip".to_vec()).contains("not a .npy file"));
        assert!(err(npy("|O", false, "(2,)", &f4)).contains("'|O' is not supported"));
        assert!(err(npy("<U3", false, "(2,)", &f4)).contains("'<U3' is not supported"));
        let e = err(npy("<f4", false, "(1000000000, 1000000000)", &f4));
        assert!(e.contains("more than the"), "{e}");
        let e = err(npy("<f4", false, "(3,)", &f4));
        assert_eq!(e, ".npy: shape [3] needs 12 bytes of data, the file holds 8");
        let mut cut = npy("<f4", false, "(2,)", &f4);
        cut.truncate(20);
        assert_eq!(err(cut), ".npy: the file ends inside its header");
        let one_d = read_npy(&npy("<f4", false, "(2,)", &f4)).unwrap();
        let e = npy_table(one_d.clone(), None, Missing::Refuse).unwrap_err().to_string();
        assert!(
            e.contains("expected a 2-D (rows × features) array, the file holds shape [2]"),
            "{e}"
        );
        // NaN is a missing value: counted and refused, its rows dropped, or kept for a
        // series to fill; an infinity is refused whatever the policy.
        let nan = bytes(&[1.0f32, 2.0, 3.0, f32::NAN, 5.0, 6.0], f32::to_le_bytes);
        let three = read_npy(&npy("<f4", false, "(3, 2)", &nan)).unwrap();
        let e = npy_table(three.clone(), None, Missing::Refuse).unwrap_err().to_string();
        assert_eq!(
            e,
            "1 missing value in 1 row, the first at row 1, column 'x1' (NaN); pass --missing \
             drop to leave those rows out"
        );
        let kept = npy_table(three.clone(), None, Missing::Drop).unwrap();
        assert_eq!(
            (kept.values, kept.ids, kept.dropped),
            (vec![1.0, 2.0, 5.0, 6.0], vec![0, 2], 1)
        );
        let gaps = npy_table(three, None, Missing::Interpolate).unwrap();
        assert!(gaps.values[3].is_nan() && gaps.rows() == 3);
        let inf = bytes(&[1.0f32, f32::INFINITY], f32::to_le_bytes);
        let two = read_npy(&npy("<f4", false, "(1, 2)", &inf)).unwrap();
        let e = npy_table(two, None, Missing::Drop).unwrap_err().to_string();
        assert_eq!(e, ".npy: row 0, column 1: inf is not a finite float32 value");
        let ok = read_npy(&npy("<f4", false, "(1, 2)", &f4)).unwrap();
        let e = npy_table(ok.clone(), Some(one_d), Missing::Refuse).unwrap_err().to_string();
        assert!(e.contains("one label per data row"), "{e}");
        let half = read_npy(&npy("<f4", false, "(1,)", &bytes(&[0.5f32], f32::to_le_bytes)));
        let e = npy_table(ok, Some(half.unwrap()), Missing::Refuse).unwrap_err().to_string();
        assert_eq!(e, ".npy: labels must be integers, element 0 is 0.5");
    }
}
