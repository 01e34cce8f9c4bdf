//! Images: PNG, JPEG and DICOM files decoded to a [`Raster`], then either
//! prepared as the model's public [`ImagePreprocessing`] says (any size:
//! colour, resize, normalisation) or, for a model without one, taken as
//! they are (one CHW record in `[0, 1]` of exactly the model's shape); and
//! the CIFAR-10 binary format.

mod dicom;
mod jpeg;
mod png;
mod resize;

use cryptmed_model::{Color, ImagePreprocessing, Resize};

use super::{InputError, Records, records_in};

/// A decoded image: 8-bit samples, `channels` (1 grey, 3 RGB) interleaved per pixel, rows top first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Samples per pixel: 1 or 3.
    pub channels: usize,
    /// `width * height * channels` samples.
    pub data: Vec<u8>,
}

/// The largest image a file may decode to (pixels), so that a hostile file
/// cannot make the client allocate without bound.
pub const MAX_PIXELS: usize = 1 << 28;

/// Image file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PNG.
    Png,
    /// JPEG (baseline and progressive).
    Jpeg,
    /// DICOM (`.dcm`): the first frame, rescaled and windowed to grey levels.
    Dicom,
}

impl Format {
    /// The format a file name says (`.png`, `.jpg`/`.jpeg`, `.dcm`/`.dicom`).
    pub fn of(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit('.').next().unwrap_or("");
        match ext {
            "png" => Some(Format::Png),
            "jpg" | "jpeg" => Some(Format::Jpeg),
            "dcm" | "dicom" => Some(Format::Dicom),
            _ => None,
        }
    }
}

/// Decodes an image file of `format`.
pub fn decode(file: &str, bytes: &[u8], format: Format) -> Result<Raster, InputError> {
    let bad = |what: &str, e: String| InputError::Format {
        file: file.into(),
        reason: format!("{what}: {e}"),
    };
    let img = match format {
        Format::Png => png::decode(bytes).map_err(|e| bad("PNG", e))?,
        Format::Jpeg => jpeg::decode(bytes).map_err(|e| bad("JPEG", e))?,
        Format::Dicom => dicom::decode(bytes).map_err(|e| bad("DICOM", e))?,
    };
    if img.width == 0 || img.height == 0 {
        return Err(bad("image", "it has no pixels".into()));
    }
    Ok(img)
}

/// Checks a decoder's size before it allocates.
pub(crate) fn check_size(width: usize, height: usize, channels: usize) -> Result<(), String> {
    match width.checked_mul(height) {
        Some(p) if p <= MAX_PIXELS && channels > 0 => Ok(()),
        _ => Err(format!(
            "{width} x {height} pixels, above the limit of {MAX_PIXELS}"
        )),
    }
}

impl Raster {
    /// The same image in `color`: grey replicated to RGB, or RGB to grey as
    /// PIL's `convert("L")` does (`(19595 R + 38470 G + 7471 B + 2^15) >> 16`).
    pub fn to_color(self, color: Color) -> Raster {
        match (self.channels, color) {
            (1, Color::Rgb) => Raster {
                channels: 3,
                data: self.data.iter().flat_map(|g| [*g; 3]).collect(),
                ..self
            },
            (3, Color::Gray) => Raster {
                channels: 1,
                data: self
                    .data
                    .chunks_exact(3)
                    .map(|p| {
                        let l = 19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32;
                        ((l + 0x8000) >> 16) as u8
                    })
                    .collect(),
                ..self
            },
            _ => self,
        }
    }

    /// The image resized to `width x height` (a copy when it already is).
    pub fn resize(&self, width: usize, height: usize, method: Resize) -> Raster {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        match method {
            Resize::Nearest => resize::nearest(self, width, height),
            Resize::Bilinear => resize::bilinear(self, width, height),
        }
    }
}

/// One record prepared from `img` as `prep` says: colour, size, then
/// `(pixel / 255 - mean[c]) / std[c]`, channel first.
pub fn prepare(img: Raster, prep: &ImagePreprocessing) -> Vec<f64> {
    let img = img
        .to_color(prep.color)
        .resize(prep.width, prep.height, prep.resize);
    let (c, plane) = (img.channels, img.width * img.height);
    let mut out = vec![0.0; c * plane];
    for (p, px) in img.data.chunks_exact(c).enumerate() {
        for (ch, v) in px.iter().enumerate() {
            out[ch * plane + p] = (*v as f64 / 255.0 - prep.mean[ch]) / prep.std[ch];
        }
    }
    out
}

/// `img` as it is, for a model without image preprocessing: one CHW record
/// in `[0, 1]`, which must be the model's input shape (or a flat vector of
/// as many values).
pub fn as_is(file: &str, img: &Raster, shape: &[usize]) -> Result<Vec<f64>, InputError> {
    let (w, h, c) = (img.width, img.height, img.channels);
    one_record(file, "an image", &[c, h, w], shape)?;
    let mut out = vec![0.0; c * w * h];
    for (p, px) in img.data.chunks_exact(c).enumerate() {
        for (ch, v) in px.iter().enumerate() {
            out[ch * w * h + p] = *v as f64 / 255.0;
        }
    }
    Ok(out)
}

/// Refuses an image of shape `found` (`[C, H, W]`) unless it is one record
/// of the model input `shape`, or the model takes a flat vector of as many
/// values (the image flattened, channel first).
fn one_record(file: &str, what: &str, found: &[usize], shape: &[usize]) -> Result<(), InputError> {
    let len: usize = found.iter().product();
    let flat_model = shape.iter().filter(|n| **n != 1).count() <= 1;
    let fits = (records_in(found, shape) == Some(1) && len == shape.iter().product::<usize>())
        || (flat_model && len == shape.iter().product::<usize>());
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
    let img = decode(file, bytes, Format::Png)?;
    Ok(Records {
        records: vec![as_is(file, &img, shape)?],
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
        ..Records::default()
    })
}
