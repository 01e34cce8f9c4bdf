//! The public description of a model's inputs beyond their shape: how an
//! image file becomes a record ([`Preprocessing`]). It travels with the
//! architecture to the client and the dealer and is part of the digest both
//! parties check, so a client cannot feed a model differently prepared images
//! by mistake. Read from the ONNX metadata key `preprocessing` (a JSON
//! string) or given beside the model.

use serde::{Deserialize, Serialize};

/// How a record is prepared from a file before anything is shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Image files (PNG, JPEG, DICOM) to the model's `[C, H, W]` input.
    pub image: Option<ImagePreprocessing>,
}

/// An image's way to a `[C, H, W]` record: decode; convert to the colour
/// (`gray` to `rgb` replicates the grey level, `rgb` to `gray` is PIL's
/// `L` conversion); resize to `height x width` as PIL's
/// `Image.resize((width, height), method)` computes it; then for each
/// channel `c`, `(pixel / 255 - mean[c]) / std[c]`. Keras'
/// `xception.preprocess_input` (`x / 127.5 - 1`) is `mean = std = 0.5`;
/// torchvision's ImageNet normalisation is `mean = [0.485, 0.456, 0.406]`,
/// `std = [0.229, 0.224, 0.225]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePreprocessing {
    /// Output height in pixels.
    pub height: usize,
    /// Output width in pixels.
    pub width: usize,
    /// Colour of the record: one grey channel or three RGB channels.
    pub color: Color,
    /// How the image is resized.
    pub resize: Resize,
    /// Per channel, subtracted from `pixel / 255`.
    pub mean: Vec<f64>,
    /// Per channel, divides after the mean is subtracted.
    pub std: Vec<f64>,
}

/// A record's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// One channel.
    Gray,
    /// Three channels, red first.
    Rgb,
}

impl Color {
    /// Channels of a record.
    pub fn channels(self) -> usize {
        match self {
            Color::Gray => 1,
            Color::Rgb => 3,
        }
    }
}

/// A resizing method, as PIL implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// `Image.NEAREST` (Keras' `load_img` default).
    Nearest,
    /// `Image.BILINEAR`, antialiased when shrinking as PIL does.
    Bilinear,
}

/// The largest image side a preprocessing may ask for.
pub const MAX_SIDE: usize = 4096;

impl Preprocessing {
    /// Parses the JSON of the ONNX metadata key `preprocessing`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("preprocessing: {e}"))
    }

    /// What is wrong with it for a model of input shape `shape` (empty when it fits).
    pub fn problems(&self, shape: &[usize]) -> Vec<String> {
        let Some(img) = &self.image else {
            return vec![];
        };
        let mut p = Vec::new();
        let c = img.color.channels();
        if shape != [c, img.height, img.width] {
            p.push(format!(
                "image preprocessing to {c} x {} x {} for a model input of shape {shape:?}",
                img.height, img.width
            ));
        }
        if img.height == 0 || img.width == 0 || img.height > MAX_SIDE || img.width > MAX_SIDE {
            p.push(format!(
                "image size {} x {} (1 to {MAX_SIDE} pixels a side)",
                img.height, img.width
            ));
        }
        if img.mean.len() != c || img.std.len() != c {
            p.push(format!(
                "{} means and {} standard deviations for {c} channels",
                img.mean.len(),
                img.std.len()
            ));
        }
        if img.mean.iter().any(|m| !m.is_finite())
            || img.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            p.push("means must be finite and standard deviations finite and positive".into());
        }
        p
    }
}
