//! The client's input pipeline: record files read, checked against the
//! model's public description and prepared, all before anything is shared.
//!
//! Formats: CSV, NPY, IDX (MNIST, gzipped or not), the CIFAR-10 binary
//! format, and images (PNG, JPEG, DICOM, one file or a folder of them),
//! into flat records of `f64`. An image is prepared as the model declares
//! ([`cryptmed_model::ImagePreprocessing`]: any size, colour, resize,
//! normalisation); a model without a declaration takes an image of exactly
//! its input shape, in `[0, 1]`.
//!
//! **Numbering**, the same in every message (and in the engine's): records
//! are counted from 0, as `diagnose` numbers its results; file lines and
//! columns from 1, as an editor shows them. A column is a value's position
//! in the record flattened as one CSV row (for CSV, the CSV column). CSV
//! refusals name the line and the record (`line 4 (record 2), column 5`),
//! the binary formats the record and the column (`record 2, column 5`).
//!
//! **Shapes.** An array file (NPY, IDX) must hold one record, or a leading
//! batch axis of records, each of the model's input shape, its flattened
//! length, or the same up to axes of length 1 (an MNIST IDX file of
//! `N x 28 x 28` for a model of `1 x 28 x 28`); anything else is refused
//! with the shape found and the shape expected, never re-cut into records.

mod csv;
mod folder;
pub use folder::MAX_IMAGES;
mod idx;
pub mod image;
mod npy;
mod plausible;
pub mod results;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use cryptmed_model::{FeatureSchema, ImagePreprocessing, Network};

pub use csv::{CsvOptions, Table, csv};
pub use idx::{idx, idx_labels};
pub use image::{Format, Raster, cifar, png};
pub use npy::npy;
pub use plausible::{Implausible, check_plausible};

/// Where a record is in its file: the 1-based line for text formats, and
/// the record's index counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// 1-based file line (CSV), if the format has lines.
    pub line: Option<usize>,
    /// Record index, counted from 0.
    pub record: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l} (record {})", self.record),
            None => write!(f, "record {}", self.record),
        }
    }
}

/// A shape as `(3, 20)`.
fn dims(d: &[usize]) -> String {
    let inner: Vec<String> = d.iter().map(usize::to_string).collect();
    format!("({})", inner.join(", "))
}

/// Why records could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    #[error("{file}: {reason}")]
    Io {
        /// File.
        file: String,
        /// Why.
        reason: String,
    },
    /// The file is not in the format its name says, is truncated, holds
    /// labels instead of records, or holds no records.
    #[error("{file}: {reason}")]
    Format {
        /// File.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is not a number, not finite, or out of range.
    #[error("{file}: {place}, column {column}: {reason}")]
    Value {
        /// File.
        file: String,
        /// The record.
        place: Place,
        /// 1-based column (value of the flattened record).
        column: usize,
        /// What is wrong, with the allowed range where there is one.
        reason: String,
    },
    /// An array (NPY, IDX, PNG, CIFAR) whose shape does not hold records of
    /// the model's input shape.
    #[error("{file}: {what} of shape {} does not hold records of the model's input shape {}: {}", dims(found), dims(expected), hint(expected, *batch))]
    ArrayShape {
        /// File.
        file: String,
        /// `an array`, `an image`, ...
        what: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The model's input shape.
        expected: Vec<usize>,
        /// Whether the format may hold a batch of records.
        batch: bool,
    },
}

/// What an array file should hold for a model of input shape `expected`.
fn hint(expected: &[usize], batch: bool) -> String {
    let flat: usize = expected.iter().product();
    if batch {
        format!(
            "give {} or {flat} values per record, with or without a leading batch axis",
            dims(expected)
        )
    } else {
        format!("give one record of {} ({flat} values)", dims(expected))
    }
}

/// Records, and labels when the file carries them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    /// One flat record per entry.
    pub records: Vec<Vec<f64>>,
    /// One label per record, when known.
    pub labels: Option<Vec<usize>>,
    /// For text formats, the 1-based file line of each record; empty otherwise.
    pub lines: Vec<usize>,
    /// For a folder of images, the file of each record; empty otherwise.
    pub sources: Vec<String>,
    /// For a CSV, the 1-based file column of each model column (they
    /// differ when columns are matched by name); empty when they are equal.
    pub columns: Vec<usize>,
}

impl Records {
    /// Keeps the first `n` records (and their labels and places), dropping the rest.
    pub fn keep_first(&mut self, n: usize) {
        self.records.truncate(n);
        if let Some(l) = &mut self.labels {
            l.truncate(n);
        }
        self.lines.truncate(n);
        self.sources.truncate(n);
    }

    /// Where record `record` is in its file.
    pub fn place(&self, record: usize) -> Place {
        Place {
            line: self.lines.get(record).copied(),
            record,
        }
    }

    /// A digest of the records as the model reads them (values, in order,
    /// bit for bit): a results file remembers it, so that `--resume` only
    /// continues the same records.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"cryptmed records v1\0");
        h.update(&(self.records.len() as u64).to_le_bytes());
        for r in &self.records {
            h.update(&(r.len() as u64).to_le_bytes());
            for v in r {
                h.update(&v.to_bits().to_le_bytes());
            }
        }
        h.finalize().to_hex().to_string()
    }

    /// The file column of model column `column` (both 1-based).
    pub fn file_column(&self, column: usize) -> usize {
        self.columns
            .get(column.wrapping_sub(1))
            .copied()
            .unwrap_or(column)
    }

    /// The loader's error for a value refused later (by the engine, against
    /// the model's own limits), so that every refusal reads the same;
    /// `column` is the model's (1-based), the message names the file's.
    pub fn value_error(
        &self,
        file: &str,
        record: usize,
        column: usize,
        reason: String,
    ) -> InputError {
        InputError::Value {
            file: file.into(),
            place: self.place(record),
            column: self.file_column(column),
            reason,
        }
    }
}

/// What records must fit: the model's input shape and, for images, the
/// preprocessing it declares and its class names (a folder's labels).
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// One record's shape, without a batch axis.
    pub shape: &'a [usize],
    /// How an image file becomes a record, when the model says.
    pub image: Option<&'a ImagePreprocessing>,
    /// Class names, in label order (for a folder of class subfolders).
    pub classes: Option<&'a [String]>,
    /// The model's columns, when it names them (a CSV is matched by name).
    pub schema: Option<&'a FeatureSchema>,
}

impl<'a> Target<'a> {
    /// What a network's public description asks of records.
    pub fn of(net: &'a Network) -> Self {
        Target {
            shape: &net.input_shape,
            image: net.preprocessing.as_ref().and_then(|p| p.image.as_ref()),
            classes: net.class_names.as_deref(),
            schema: net.schema.as_ref(),
        }
    }

    /// Records of `shape`, nothing else declared.
    pub fn shape(shape: &'a [usize]) -> Self {
        Target {
            shape,
            ..Target::default()
        }
    }
}

/// Loads records of `len` values each from `path`; see [`load_shaped`]
/// (with the flat input shape `[len]`).
pub fn load(path: &Path, len: usize, labelled: bool, limit: f64) -> Result<Records, InputError> {
    load_shaped(path, &[len], labelled, limit)
}

/// [`load_for`] with the model input shape only.
pub fn load_shaped(
    path: &Path,
    shape: &[usize],
    labelled: bool,
    limit: f64,
) -> Result<Records, InputError> {
    load_for(path, &Target::shape(shape), labelled, limit)
}

/// Loads records for `target` from `path` in one go: [`Source::read`] then
/// [`Source::records`], columns by name where the model names them.
pub fn load_for(
    path: &Path,
    target: &Target<'_>,
    labelled: bool,
    limit: f64,
) -> Result<Records, InputError> {
    let opts = ReadOptions {
        csv: CsvOptions {
            labelled,
            ..CsvOptions::default()
        },
        limit,
    };
    Source::read(path, &opts)?.records(target)
}

/// How a record file is read before the model is known.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// CSV columns: header, skipped columns, label.
    pub csv: CsvOptions,
    /// Values must be finite with `|v| < limit`.
    pub limit: f64,
}

/// A record file read and checked as far as it can be without the model:
/// a CSV parsed whole (header, skipped columns, every number), an array's
/// header and values, every image decoded. [`Source::records`] then fits it
/// to the model's public description (shape, columns, preprocessing), so
/// that a client finds every fault of its own files before it connects.
#[derive(Debug, Clone)]
pub struct Source {
    file: String,
    limit: f64,
    labelled: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Table(Table),
    Array {
        what: &'static str,
        shape: Vec<usize>,
        values: Vec<f64>,
    },
    Cifar(Vec<u8>),
    Images(Vec<folder::ImageFile>),
}

impl Source {
    /// Reads `path`, choosing the format by name (`.csv` or `.txt`, `.npy`,
    /// `.png`, `.jpg`/`.jpeg`, `.dcm`, `.bin` for CIFAR-10, anything with
    /// `idx` or `ubyte` for IDX), or a folder of images (see
    /// [`folder`](crate::folder)). With `labelled`, a CSV has a label column
    /// and a folder's subfolders name the classes.
    pub fn read(path: &Path, opts: &ReadOptions) -> Result<Source, InputError> {
        let file = path.display().to_string();
        let labelled = opts.csv.labelled;
        let kind = if path.is_dir() {
            Kind::Images(folder::read_dir(path, labelled)?)
        } else {
            let name = lower_name(path);
            if Format::of(&name).is_some() {
                Kind::Images(vec![folder::ImageFile::read(path, None)?])
            } else {
                let bytes = read(path)?;
                if name.ends_with(".csv") || name.ends_with(".txt") {
                    Kind::Table(Table::parse(&file, &bytes, &opts.csv, opts.limit)?)
                } else if name.ends_with(".npy") {
                    let (shape, values) = npy::npy_array(&file, &bytes)?;
                    Kind::Array {
                        what: "an array",
                        shape,
                        values,
                    }
                } else if name.contains("idx") || name.contains("ubyte") {
                    let (shape, values) = idx::idx_array(&file, &bytes)?;
                    Kind::Array {
                        what: "an IDX array",
                        shape,
                        values,
                    }
                } else if name.ends_with(".bin") {
                    cifar(&file, &bytes, &[3, 32, 32])?;
                    Kind::Cifar(bytes)
                } else {
                    return Err(InputError::Format {
                        file,
                        reason: "unknown format: use .csv, .npy, .png, .jpg, .dcm, an IDX file, a CIFAR-10 .bin or a folder of images".into(),
                    });
                }
            }
        };
        let source = Source {
            file,
            limit: opts.limit,
            labelled,
            kind,
        };
        if let Kind::Array { shape, values, .. } = &source.kind {
            source.check_values(shape, values)?;
        }
        Ok(source)
    }

    /// The file (or folder) read.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The CSV table, for a CSV file.
    pub fn table(&self) -> Option<&Table> {
        match &self.kind {
            Kind::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The records for `target`: shape checked, CSV columns matched, images
    /// prepared, every value finite and below the limit. A file without
    /// records is refused.
    pub fn records(&self, target: &Target<'_>) -> Result<Records, InputError> {
        let file = &self.file;
        let shape = target.shape;
        let r = match &self.kind {
            Kind::Table(t) => t.records(shape.iter().product(), target.schema)?,
            Kind::Array {
                what,
                shape: found,
                values,
            } => split(file, what, found, shape, values.clone())?,
            Kind::Cifar(bytes) => cifar(file, bytes, shape)?,
            Kind::Images(images)
                if images.len() == 1 && !self.labelled && images[0].name == *file =>
            {
                Records {
                    records: vec![images[0].record(target)?],
                    ..Records::default()
                }
            }
            Kind::Images(images) => folder::records(images, target, self.labelled)?,
        };
        if r.records.is_empty() {
            return Err(no_records(file, "the file holds none"));
        }
        check(file, &r, self.limit)?;
        Ok(r)
    }

    /// Refuses an array value that is not finite or not below the limit,
    /// naming its index as a record of the array's own trailing shape.
    fn check_values(&self, shape: &[usize], values: &[f64]) -> Result<(), InputError> {
        let per = shape
            .get(1..)
            .map_or(1, |s| s.iter().product::<usize>().max(1));
        let per = if shape.len() <= 1 {
            values.len().max(1)
        } else {
            per
        };
        let r = Records {
            records: values.chunks(per).map(<[f64]>::to_vec).collect(),
            ..Records::default()
        };
        check(&self.file, &r, self.limit)
    }
}

/// One image file as a record: prepared as the model declares, or as it is.
pub(crate) fn image_record(
    file: &str,
    bytes: &[u8],
    format: Format,
    target: &Target<'_>,
) -> Result<Vec<f64>, InputError> {
    let img = image::decode(file, bytes, format)?;
    match target.image {
        Some(prep) => Ok(image::prepare(img, prep)),
        None => image::as_is(file, &img, target.shape),
    }
}

/// Loads the labels of an IDX label file (magic `0x00000801`, gzipped or not).
pub fn load_labels(path: &Path) -> Result<Vec<usize>, InputError> {
    let file = path.display().to_string();
    idx_labels(&file, &read(path)?)
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| InputError::Io {
        file: path.display().to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn lower_name(path: &Path) -> String {
    path.file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The error for a file without records.
pub(crate) fn no_records(file: &str, why: &str) -> InputError {
    InputError::Format {
        file: file.into(),
        reason: format!("no records: {why}"),
    }
}

/// Refuses values that are not finite or not below `limit` in magnitude.
fn check(file: &str, r: &Records, limit: f64) -> Result<(), InputError> {
    for (k, rec) in r.records.iter().enumerate() {
        for (c, v) in rec.iter().enumerate() {
            let reason = if !v.is_finite() {
                format!("{v} is not a finite number")
            } else if v.abs() >= limit {
                format!("{v} is outside the range a record value may take, (-{limit}, {limit})")
            } else {
                continue;
            };
            return Err(r.value_error(file, k, c + 1, reason));
        }
    }
    Ok(())
}

/// How many records an array of shape `found` holds for a model of input
/// `shape`: one if `found` is a record's shape, `found[0]` if the rest is.
/// A record's shape is `shape`, its flattened length, or either up to axes
/// of length 1.
pub(crate) fn records_in(found: &[usize], shape: &[usize]) -> Option<usize> {
    let squeeze = |d: &[usize]| d.iter().copied().filter(|n| *n != 1).collect::<Vec<_>>();
    let flat: usize = shape.iter().product();
    let fits = |t: &[usize]| t == shape || t == [flat] || squeeze(t) == squeeze(shape);
    if fits(found) {
        Some(1)
    } else if let Some((n, rest)) = found.split_first()
        && fits(rest)
    {
        Some(*n)
    } else {
        None
    }
}

/// Cuts `values` (an array of shape `found`) into records of `shape`, or
/// refuses the shape.
pub(crate) fn split(
    file: &str,
    what: &str,
    found: &[usize],
    shape: &[usize],
    values: Vec<f64>,
) -> Result<Records, InputError> {
    let n = records_in(found, shape).ok_or_else(|| InputError::ArrayShape {
        file: file.into(),
        what: what.into(),
        found: found.to_vec(),
        expected: shape.to_vec(),
        batch: true,
    })?;
    if n == 0 {
        return Err(no_records(
            file,
            &format!("{what} of shape {}", dims(found)),
        ));
    }
    let len = values.len() / n;
    Ok(Records {
        records: values.chunks(len.max(1)).map(<[f64]>::to_vec).collect(),
        ..Records::default()
    })
}
