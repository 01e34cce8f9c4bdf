//! The public description of a model's inputs beyond their shape: what each
//! column of a record is ([`FeatureSchema`]: name, unit, plausible range)
//! and how an image file becomes a record ([`Preprocessing`]). Both travel
//! with the architecture to the client and the dealer and are part of the
//! digest both parties check, so a client cannot feed a model differently
//! ordered columns or differently prepared images by mistake. Read from the
//! ONNX metadata keys `feature_names`, `feature_units`, `feature_ranges` and
//! `preprocessing`, or given beside the model.

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

/// The model's input columns, in the order the model reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureSchema {
    /// One entry per value of a record.
    pub features: Vec<Feature>,
}

/// One input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// The column's name (as in a CSV header).
    pub name: String,
    /// Its unit, when documented (`mm`, `mg/dL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The values a real record plausibly takes, `[low, high]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

impl FeatureSchema {
    /// The schema of ONNX metadata: `feature_names` (comma-separated),
    /// optional `feature_units` (comma-separated, empty for none) and
    /// `feature_ranges` (JSON `[[low, high], ...]`); `None` without names.
    pub fn from_metadata(
        names: Option<&str>,
        units: Option<&str>,
        ranges: Option<&str>,
    ) -> Result<Option<Self>, String> {
        let Some(names) = names else {
            if units.is_some() || ranges.is_some() {
                return Err("feature_units or feature_ranges without feature_names".into());
            }
            return Ok(None);
        };
        let names: Vec<String> = names.split(',').map(|s| s.trim().to_string()).collect();
        let n = names.len();
        let units: Vec<Option<String>> = match units {
            Some(u) => u
                .split(',')
                .map(|s| Some(s.trim().to_string()).filter(|s| !s.is_empty()))
                .collect(),
            None => vec![None; n],
        };
        let ranges: Vec<Option<[f64; 2]>> = match ranges {
            Some(r) => serde_json::from_str::<Vec<Option<[f64; 2]>>>(r)
                .map_err(|e| format!("feature_ranges: {e}"))?,
            None => vec![None; n],
        };
        if units.len() != n || ranges.len() != n {
            return Err(format!(
                "{n} feature names, {} units and {} ranges (one each per column)",
                units.len(),
                ranges.len()
            ));
        }
        let columns = names
            .into_iter()
            .zip(units)
            .zip(ranges)
            .map(|((name, unit), range)| Feature { name, unit, range })
            .collect();
        Ok(Some(FeatureSchema { features: columns }))
    }

    /// What is wrong with it for a model whose records hold `len` values.
    pub fn problems(&self, len: usize) -> Vec<String> {
        let mut p = Vec::new();
        if self.features.len() != len {
            p.push(format!(
                "a schema of {} columns for records of {len} values",
                self.features.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (j, c) in self.features.iter().enumerate() {
            if c.name.is_empty() || !seen.insert(c.name.as_str()) {
                p.push(format!(
                    "column {} has an empty or repeated name {:?}",
                    j + 1,
                    c.name
                ));
            }
            if let Some([lo, hi]) = c.range
                && !(lo.is_finite() && hi.is_finite() && lo <= hi)
            {
                p.push(format!(
                    "column {} ({}) has the range [{lo}, {hi}]",
                    j + 1,
                    c.name
                ));
            }
        }
        p
    }

    /// The power of two `2^e_j` each column is multiplied by before it is
    /// encoded, a public rule of the public ranges (the engine scales the
    /// first dense layer's column `j` by `2^-e_j` to match, exactly).
    ///
    /// Two roundings meet in the first layer: the record's (`2^-(f+1)` on
    /// `x_j 2^e_j`, so `|w_j| 2^-(f+1+e_j)` on the output) and its weights'
    /// (`2^-(f+9)` on `w_j 2^-e_j`, so `|x_j| 2^-(f+9-e_j)`). They balance at
    /// `2^(2e_j) = 2^8 |w_j| / |x_j|`. The weights are private, so the rule
    /// assumes what standardisation gives, `|w_j| ~ 4 / (hi - lo)` (one over
    /// a spread), and `|x_j| ~ M_j = max(|lo|, |hi|)`:
    /// `e_j = round(5 + log2(1 / ((hi - lo) M_j)) / 2)`, within
    /// [`MIN_INPUT_EXPONENT`]`..=`[`MAX_INPUT_EXPONENT`]. A fractal dimension
    /// in `[0.045, 0.10]` gets 9 more fractional bits, a specific gravity in
    /// `[1.003, 1.027]` 8, an area in `[143, 2500]` 6 fewer. Columns without
    /// a range (or with an empty one) keep 0.
    pub fn input_exponents(&self) -> Vec<i32> {
        self.features
            .iter()
            .map(|c| match c.range {
                Some([lo, hi]) if hi > lo && c.magnitude().is_some_and(|m| m > 0.0) => {
                    let m = lo.abs().max(hi.abs());
                    let e = 5.0 + 0.5 * (1.0 / ((hi - lo) * m)).log2();
                    (e.round() as i32).clamp(MIN_INPUT_EXPONENT, MAX_INPUT_EXPONENT)
                }
                _ => 0,
            })
            .collect()
    }
}

impl Feature {
    /// The largest magnitude of the column's plausible range, if it has one.
    pub fn magnitude(&self) -> Option<f64> {
        self.range.map(|[lo, hi]| lo.abs().max(hi.abs()))
    }
}

/// The most fractional bits [`FeatureSchema::input_exponents`] adds to a column.
pub const MAX_INPUT_EXPONENT: i32 = 16;
/// The most it takes away (a column of large values keeps `f - 8` bits).
pub const MIN_INPUT_EXPONENT: i32 = -8;
