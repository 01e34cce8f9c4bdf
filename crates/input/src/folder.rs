//! A folder of images (PNG, JPEG, DICOM) as records, in file-name order:
//! the images directly in it and in its subfolders, one level down. With
//! labels, the subfolders name the classes (the common `ImageFolder` /
//! `flow_from_directory` layout): a subfolder named like one of the model's
//! classes gets that class's label, otherwise labels follow the subfolders'
//! sorted names; an image outside every subfolder has no label and is
//! refused. Each record remembers its file, so messages and results name it.

use std::path::{Path, PathBuf};

use super::image::decode;
use super::{Format, InputError, Records, Target, image_record, lower_name, read};

/// The largest number of images a folder may hold.
pub const MAX_IMAGES: usize = 1 << 16;

/// One image file, read and checked to decode, not yet prepared.
#[derive(Debug, Clone)]
pub(crate) struct ImageFile {
    /// The file, for messages and results.
    pub(crate) name: String,
    /// Its class subfolder, if any.
    pub(crate) class: Option<String>,
    pub(crate) format: Format,
    /// The file's bytes (prepared again once the model is known, so a
    /// folder of large images is never held decoded).
    pub(crate) bytes: Vec<u8>,
}

impl ImageFile {
    /// Reads `path` and checks that it decodes.
    pub(crate) fn read(path: &Path, class: Option<String>) -> Result<Self, InputError> {
        let name = path.display().to_string();
        let format = Format::of(&lower_name(path)).unwrap_or(Format::Png);
        let bytes = read(path)?;
        decode(&name, &bytes, format)?;
        Ok(ImageFile {
            name,
            class,
            format,
            bytes,
        })
    }

    /// The record, prepared for `target`.
    pub(crate) fn record(&self, target: &Target<'_>) -> Result<Vec<f64>, InputError> {
        image_record(&self.name, &self.bytes, self.format, target)
    }
}

/// Reads a folder: every image, checked to decode, in name order; with
/// `labelled`, every image must be in a class subfolder.
pub(crate) fn read_dir(dir: &Path, labelled: bool) -> Result<Vec<ImageFile>, InputError> {
    let file = dir.display().to_string();
    let io = |e: std::io::Error| InputError::Io {
        file: file.clone(),
        reason: e.to_string(),
    };
    let mut images: Vec<(Option<String>, PathBuf)> = Vec::new();
    for entry in sorted(dir).map_err(io)? {
        if entry.is_dir() {
            let class = entry
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            let inner = sorted(&entry).map_err(io)?;
            images.extend(
                inner
                    .into_iter()
                    .filter(|p| is_image(p))
                    .map(|p| (Some(class.clone()), p)),
            );
        } else if is_image(&entry) {
            images.push((None, entry));
        }
        if images.len() > MAX_IMAGES {
            return Err(InputError::Format {
                file,
                reason: format!("more than {MAX_IMAGES} images"),
            });
        }
    }
    if images.is_empty() {
        return Err(super::no_records(
            &file,
            "it holds no .png, .jpg or .dcm file",
        ));
    }
    images
        .into_iter()
        .map(|(class, path)| {
            if labelled && class.is_none() {
                return Err(InputError::Format {
                    file: path.display().to_string(),
                    reason: "an image outside every class subfolder has no label (put it in a folder named by its class)".into(),
                });
            }
            ImageFile::read(&path, class)
        })
        .collect()
}

/// The records of images read by [`read_dir`], prepared for `target`, with
/// their labels from the class subfolders when `labelled`.
pub(crate) fn records(
    images: &[ImageFile],
    target: &Target<'_>,
    labelled: bool,
) -> Result<Records, InputError> {
    let mut classes: Vec<&str> = images.iter().filter_map(|i| i.class.as_deref()).collect();
    classes.dedup();
    let mut out = Records::default();
    for img in images {
        out.records.push(img.record(target)?);
        out.sources.push(img.name.clone());
    }
    if labelled {
        let labels = images
            .iter()
            .map(|i| label_of(i.class.as_deref().unwrap_or(""), &classes, target.classes))
            .collect();
        out.labels = Some(labels);
    }
    Ok(out)
}

/// The label of a subfolder: its class's index among the model's class
/// names, or its rank among the folder's subfolders.
fn label_of(class: &str, found: &[&str], model: Option<&[String]>) -> usize {
    model
        .and_then(|names| names.iter().position(|n| n == class))
        .unwrap_or_else(|| found.iter().position(|c| *c == class).unwrap_or(0))
}

fn is_image(p: &Path) -> bool {
    p.is_file() && Format::of(&lower_name(p)).is_some()
}

/// A folder's entries, sorted by name (hidden files skipped).
fn sorted(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(".")
                .starts_with('.')
        })
        .collect();
    v.sort();
    Ok(v)
}
