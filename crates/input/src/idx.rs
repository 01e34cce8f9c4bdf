//! IDX files (the MNIST format), gzipped or not: unsigned-byte images as
//! records scaled to `[0, 1]`, and label files.

use std::io::Read;

use super::{InputError, Records, dims, split};

/// The decoded header and body of an IDX file.
struct Idx {
    dims: Vec<usize>,
    body: Vec<u8>,
}

fn parse(file: &str, bytes: &[u8]) -> Result<Idx, InputError> {
    let bad = |r: String| InputError::Format {
        file: file.into(),
        reason: r,
    };
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("gzip: {e}")))?;
        raw = out;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic)".into()));
    }
    let (ty, rank) = (bytes[2], bytes[3] as usize);
    if ty != 0x08 {
        return Err(bad(format!(
            "only unsigned-byte IDX files (type 0x08), not type 0x{ty:02x}"
        )));
    }
    let d: Vec<usize> = (0..rank)
        .map(|i| {
            bytes
                .get(4 + 4 * i..8 + 4 * i)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        })
        .collect::<Option<_>>()
        .ok_or_else(|| bad(format!("truncated header ({rank} dimensions promised)")))?;
    let body = &bytes[4 + 4 * rank..];
    let count = d
        .iter()
        .try_fold(1usize, |a, n| a.checked_mul(*n))
        .ok_or_else(|| bad(format!("dimensions {} are too large", dims(&d))))?;
    if body.len() != count {
        let what = if body.len() < count {
            "truncated"
        } else {
            "too long"
        };
        return Err(bad(format!(
            "{what}: the header promises {count} bytes (dimensions {}), the file has {}",
            dims(&d),
            body.len()
        )));
    }
    Ok(Idx {
        dims: d,
        body: body.to_vec(),
    })
}

/// IDX images (magic `0x00000803`, or any rank above 1) holding one record
/// or a batch of records of the model input `shape` (see the
/// [module documentation](super)); bytes are scaled to `[0, 1]`. A label
/// file (rank 1, magic `0x00000801`) is refused: it holds no records.
pub fn idx(file: &str, bytes: &[u8], shape: &[usize]) -> Result<Records, InputError> {
    let (found, values) = idx_array(file, bytes)?;
    split(file, "an IDX array", &found, shape, values)
}

/// An IDX image file's dimensions and values in `[0, 1]`, whatever the
/// model; a label file is refused.
pub(crate) fn idx_array(file: &str, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), InputError> {
    let x = parse(file, bytes)?;
    if x.dims.len() == 1 {
        return Err(InputError::Format {
            file: file.into(),
            reason: format!(
                "an IDX label file (magic 0x00000801, {} labels): it holds labels, not records; \
                 give the images file (magic 0x00000803)",
                x.dims[0]
            ),
        });
    }
    let values = x.body.iter().map(|b| *b as f64 / 255.0).collect();
    Ok((x.dims, values))
}

/// An IDX label file (rank 1, magic `0x00000801`): one class index per byte.
pub fn idx_labels(file: &str, bytes: &[u8]) -> Result<Vec<usize>, InputError> {
    let x = parse(file, bytes)?;
    if x.dims.len() != 1 {
        return Err(InputError::Format {
            file: file.into(),
            reason: format!(
                "not an IDX label file: {} dimensions {}, labels have one",
                x.dims.len(),
                dims(&x.dims)
            ),
        });
    }
    Ok(x.body.iter().map(|b| *b as usize).collect())
}
