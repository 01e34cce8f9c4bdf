//! The public description of a model's inputs beyond their shape: its
//! columns ([`FeatureSchema`]: name, unit, plausible range) and how an image
//! file becomes a record ([`Preprocessing`]). Both travel with the
//! architecture to the client and the dealer and are part of the digest both
//! parties check, so a client cannot feed a model columns in another order
//! or differently prepared images by mistake. Read from the ONNX metadata
//! (`feature_names`, `feature_units`, `feature_ranges`, `preprocessing`) or
//! from a schema file beside the model ([`SchemaFile`], `--schema`).

use serde::{Deserialize, Serialize};

use crate::Network;

/// Longest column name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest unit, in characters.
pub const MAX_UNIT_CHARS: usize = 64;

/// One input column of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// The column's name, as a CSV header names it.
    pub name: String,
    /// Its unit, where the data's source documents one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Plausible values `[low, high]`: a record outside is refused unless
    /// the client allows implausible values (and the result says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// A model's input columns, in the order the model reads them: a CSV with a
/// header is matched to them by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureSchema {
    /// One entry per value of a record.
    pub features: Vec<Feature>,
}

impl FeatureSchema {
    /// Reads the ONNX metadata values: `feature_names` (comma-separated),
    /// `feature_units` (comma-separated, empty for none) and
    /// `feature_ranges` (JSON `[[low, high], ...]`, `null` for none); units
    /// and ranges need names, and come one per name.
    pub fn from_metadata(
        names: Option<&str>,
        units: Option<&str>,
        ranges: Option<&str>,
    ) -> Result<Option<Self>, String> {
        let Some(names) = names else {
            return match (units, ranges) {
                (None, None) => Ok(None),
                _ => Err("`feature_units` or `feature_ranges` without `feature_names`".into()),
            };
        };
        let names: Vec<String> = names.split(',').map(|s| s.trim().to_string()).collect();
        let n = names.len();
        let units: Vec<Option<String>> = match units {
            None => vec![None; n],
            Some(u) => u
                .split(',')
                .map(|s| Some(s.trim().to_string()).filter(|s| !s.is_empty()))
                .collect(),
        };
        let ranges: Vec<Option<[f64; 2]>> = match ranges {
            None => vec![None; n],
            Some(r) => serde_json::from_str(r).map_err(|e| format!("`feature_ranges`: {e}"))?,
        };
        if units.len() != n || ranges.len() != n {
            return Err(format!(
                "{n} feature names, {} units and {} ranges",
                units.len(),
                ranges.len()
            ));
        }
        let features = names
            .into_iter()
            .zip(units)
            .zip(ranges)
            .map(|((name, unit), range)| Feature { name, unit, range })
            .collect();
        Ok(Some(FeatureSchema { features }))
    }

    /// The column names, in model order.
    pub fn names(&self) -> Vec<&str> {
        self.features.iter().map(|f| f.name.as_str()).collect()
    }

    /// What is wrong with it for a model of `len` input values (empty when
    /// it fits): the count, empty, padded, overlong or repeated names,
    /// overlong units, ranges that are not two finite numbers, low below high.
    pub fn problems(&self, len: usize) -> Vec<String> {
        if self.features.len() != len {
            return vec![format!(
                "the feature schema names {} columns, the model takes {len} values",
                self.features.len()
            )];
        }
        let mut p = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, f) in self.features.iter().enumerate() {
            let col = i + 1;
            let printable = |s: &str, most: usize| {
                s.chars().count() <= most && !s.chars().any(char::is_control)
            };
            if f.name.trim().is_empty() || f.name.trim() != f.name {
                p.push(format!(
                    "feature {col}: a name is non-empty, without surrounding spaces"
                ));
            } else if !printable(&f.name, MAX_NAME_CHARS) {
                p.push(format!(
                    "feature {col}: a name has at most {MAX_NAME_CHARS} printable characters"
                ));
            } else if !seen.insert(f.name.as_str()) {
                p.push(format!(
                    "feature {col}: the name `{}` is used twice",
                    f.name
                ));
            }
            if f.unit
                .as_deref()
                .is_some_and(|u| !printable(u, MAX_UNIT_CHARS))
            {
                p.push(format!(
                    "feature {col}: a unit has at most {MAX_UNIT_CHARS} printable characters"
                ));
            }
            if let Some([lo, hi]) = f.range
                && !(lo.is_finite() && hi.is_finite() && lo < hi)
            {
                p.push(format!(
                    "feature {col}: the plausible range [{lo}, {hi}] is not two finite numbers, low below high"
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

/// A schema file (`--schema FILE.json`): the model's columns and its
/// preprocessing, each optional; what the file gives replaces the model's own.
///
/// ```json
/// {"features": [{"name": "mean radius", "unit": "mm", "range": [5.2, 31.0]}, ...],
///  "preprocessing": {"image": {"height": 150, "width": 150, "color": "rgb",
///                              "resize": "nearest", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    /// The input columns.
    #[serde(default)]
    pub features: Option<Vec<Feature>>,
    /// The preprocessing.
    #[serde(default)]
    pub preprocessing: Option<Preprocessing>,
}

impl SchemaFile {
    /// Parses a schema file's JSON.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// Puts what the file gives into `net`, replacing the model's own.
    pub fn apply(self, net: &mut Network) {
        if let Some(features) = self.features {
            net.schema = Some(FeatureSchema { features });
        }
        if let Some(p) = self.preprocessing {
            net.preprocessing = Some(p);
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(name: &str, range: Option<[f64; 2]>) -> Feature {
        Feature {
            name: name.into(),
            unit: None,
            range,
        }
    }

    #[test]
    fn metadata_gives_names_units_and_ranges_one_per_column() {
        let s = FeatureSchema::from_metadata(
            Some("age, mean radius"),
            Some("years,"),
            Some("[[0, 120], null]"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.names(), vec!["age", "mean radius"]);
        assert_eq!(s.features[0].unit.as_deref(), Some("years"));
        assert_eq!(s.features[1].unit, None);
        assert_eq!(s.features[0].range, Some([0.0, 120.0]));
        assert_eq!(s.features[1].range, None);
        assert_eq!(s.problems(2), Vec::<String>::new());
        assert_eq!(FeatureSchema::from_metadata(None, None, None), Ok(None));
        for (units, ranges, want) in [
            (Some("a,b,c"), None, "2 feature names, 3 units and 2 ranges"),
            (
                None,
                Some("[[0, 1]]"),
                "2 feature names, 2 units and 1 ranges",
            ),
            (
                None,
                Some("[[0, 1], [2]]"),
                "`feature_ranges`: invalid length 1",
            ),
        ] {
            let e = FeatureSchema::from_metadata(Some("x,y"), units, ranges).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
        assert_eq!(
            FeatureSchema::from_metadata(None, Some("mm"), None),
            Err("`feature_units` or `feature_ranges` without `feature_names`".into())
        );
    }

    #[test]
    fn every_kind_of_bad_schema_is_named() {
        let s = FeatureSchema {
            features: vec![
                feature("a", Some([1.0, 1.0])),
                feature("a", Some([0.0, f64::NAN])),
                feature(" b", None),
                feature(&"n".repeat(257), None),
                Feature {
                    name: "c".into(),
                    unit: Some("x".repeat(65)),
                    range: Some([f64::NEG_INFINITY, 0.0]),
                },
            ],
        };
        assert_eq!(
            s.problems(5),
            vec![
                "feature 1: the plausible range [1, 1] is not two finite numbers, low below high",
                "feature 2: the name `a` is used twice",
                "feature 2: the plausible range [0, NaN] is not two finite numbers, low below high",
                "feature 3: a name is non-empty, without surrounding spaces",
                "feature 4: a name has at most 256 printable characters",
                "feature 5: a unit has at most 64 printable characters",
                "feature 5: the plausible range [-inf, 0] is not two finite numbers, low below high",
            ]
        );
        assert_eq!(
            s.problems(4),
            vec!["the feature schema names 5 columns, the model takes 4 values"]
        );
    }

    #[test]
    fn a_schema_file_replaces_what_it_gives_and_refuses_unknown_keys() {
        let mut net = crate::zoo::build("secureml-mlp", 1).unwrap();
        net.class_names = Some(vec!["x".into()]);
        let f = SchemaFile::from_json(
            r#"{"features": [{"name": "a", "unit": "mm", "range": [0, 1]}]}"#,
        )
        .unwrap();
        f.apply(&mut net);
        assert_eq!(net.schema.as_ref().unwrap().names(), vec!["a"]);
        assert_eq!(net.preprocessing, None);
        // One column for a 784-input model: validation names it.
        let e = net.validate().unwrap_err().to_string();
        assert!(
            e.contains("the feature schema names 1 columns, the model takes 784 values"),
            "{e}"
        );
        for (bad, want) in [
            (r#"{"feature": []}"#, "unknown field `feature`"),
            (
                r#"{"features": [{"name": "a", "units": "mm"}]}"#,
                "unknown field `units`",
            ),
            (
                r#"{"features": [{"name": "a", "range": [1]}]}"#,
                "invalid length 1",
            ),
        ] {
            let e = SchemaFile::from_json(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
