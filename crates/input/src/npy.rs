//! NPY arrays (NumPy's format, versions 1 to 3): little-endian float32 or
//! float64 in C order, the header's shape checked against the model's.

use super::{InputError, dims, split};

/// The fields of an NPY header this reader uses.
struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
}

/// The text after `'key':` in a header dictionary (either quote style).
fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    [format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|k| header.find(k.as_str()).map(|i| &header[i + k.len()..]))
        .and_then(|rest| rest.trim_start().strip_prefix(':'))
        .map(str::trim_start)
}

fn parse_header(header: &str) -> Result<Header, String> {
    let descr = field(header, "descr")
        .and_then(|v| {
            let q = v.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            v[1..].find(q).map(|end| v[1..1 + end].to_string())
        })
        .ok_or("the header has no readable 'descr'")?;
    let fortran = field(header, "fortran_order").is_some_and(|v| v.starts_with("True"));
    let shape = field(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.find(')').map(|end| &v[..end]))
        .ok_or("the header has no readable 'shape'")?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad dimension `{s}` in the shape"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Header {
        descr,
        fortran,
        shape,
    })
}

/// NPY (version 1, 2 or 3; little-endian float32/float64; C order) holding
/// one record or a batch of records of the model input `shape` (see the
/// [module documentation](super)). A file shorter or longer than its header
/// promises is refused as such.
pub fn npy(file: &str, bytes: &[u8], shape: &[usize]) -> Result<super::Records, InputError> {
    let (found, values) = npy_array(file, bytes)?;
    split(file, "an array", &found, shape, values)
}

/// An NPY file's shape and values (C order), whatever the model.
pub(crate) fn npy_array(file: &str, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), InputError> {
    let bad = |r: String| InputError::Format {
        file: file.into(),
        reason: r,
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not an NPY file (bad magic)".into()));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("unsupported NPY version {v}"))),
    };
    let header = bytes
        .get(start..start.saturating_add(hlen))
        .ok_or_else(|| {
            bad(format!(
                "truncated: the header promises {hlen} header bytes, the file has {}",
                bytes.len().saturating_sub(start)
            ))
        })?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text".into()))?;
    let h = parse_header(header).map_err(bad)?;
    if h.fortran {
        return Err(bad("Fortran-ordered arrays are not supported".into()));
    }
    let width = match h.descr.as_str() {
        "<f8" => 8,
        "<f4" => 4,
        d => {
            return Err(bad(format!(
                "only little-endian float32 or float64 arrays ('<f4', '<f8'), not '{d}'"
            )));
        }
    };
    let count = h
        .shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .ok_or_else(|| bad(format!("shape {} is too large", dims(&h.shape))))?;
    let data = &bytes[start + hlen..];
    let need = count.saturating_mul(width);
    if data.len() != need {
        let what = if data.len() < need {
            "truncated"
        } else {
            "too long"
        };
        return Err(bad(format!(
            "{what}: the header promises {count} values of {width} bytes (shape {}), {need} bytes; \
             the file has {} bytes of data",
            dims(&h.shape),
            data.len()
        )));
    }
    let values: Vec<f64> = if width == 8 {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()
    } else {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()
    };
    Ok((h.shape, values))
}
