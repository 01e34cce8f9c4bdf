//! Images: PNG (one record) and the CIFAR-10 binary format (a label and an
//! image per record), as channel-first records in `[0, 1]`.

use super::{InputError, Records, records_in};

/// Refuses an image of shape `found` (`[C, H, W]`) unless it is one record
/// of the model input `shape`, or the model takes a flat vector of as many
/// values (the image flattened, channel first).
fn one_record(file: &str, what: &str, found: &[usize], shape: &[usize]) -> Result<(), InputError> {
    let len: usize = found.iter().product();
    let flat_model = shape.iter().filter(|n| **n != 1).count() <= 1;
    let fits = (records_in(found, shape) == Some(1) && len == shape.iter().product())
        || (flat_model && len == shape.iter().product());
    if fits {
        Ok(())
    } else {
        Err(InputError::ArrayShape {
            file: file.into(),
            what: what.into(),
            found: found.to_vec(),
            expected: shape.to_vec(),
            batch: false,
        })
    }
}

/// PNG, grayscale or RGB (alpha dropped, 16-bit reduced to 8), to one CHW
/// record in `[0, 1]` of the model input `shape`.
pub fn png(file: &str, bytes: &[u8], shape: &[usize]) -> Result<Records, InputError> {
    let bad = |r: String| InputError::Format {
        file: file.into(),
        reason: r,
    };
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| bad(format!("PNG: {e}")))?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    let keep = if ch >= 3 { 3 } else { 1 };
    one_record(file, "an image", &[keep, h, w], shape)?;
    let mut out = vec![0.0; keep * w * h];
    for y in 0..h {
        for x in 0..w {
            for c in 0..keep {
                out[(c * h + y) * w + x] = buf[(y * w + x) * ch + c] as f64 / 255.0;
            }
        }
    }
    Ok(Records {
        records: vec![out],
        ..Records::default()
    })
}

/// The CIFAR-10 binary format: records of one label byte and 3072 pixel
/// bytes (R, G, B planes of 32 x 32), scaled to `[0, 1]`, for a model of
/// input shape `(3, 32, 32)` (or 3072).
pub fn cifar(file: &str, bytes: &[u8], shape: &[usize]) -> Result<Records, InputError> {
    const REC: usize = 1 + 3072;
    one_record(file, "a CIFAR-10 image", &[3, 32, 32], shape)?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(REC) {
        return Err(InputError::Format {
            file: file.into(),
            reason: format!(
                "{} bytes is not a whole number of {REC}-byte CIFAR-10 records",
                bytes.len()
            ),
        });
    }
    let labels = bytes.chunks(REC).map(|r| r[0] as usize).collect();
    let records = bytes
        .chunks(REC)
        .map(|r| r[1..].iter().map(|b| *b as f64 / 255.0).collect())
        .collect();
    Ok(Records {
        records,
        labels: Some(labels),
        lines: Vec::new(),
    })
}
