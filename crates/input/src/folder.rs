//! A folder of images (PNG, JPEG, DICOM) as records, in file-name order:
//! the images directly in it and in its subfolders, one level down. With
//! labels, the subfolders name the classes (the common `ImageFolder` /
//! `flow_from_directory` layout): a subfolder named like one of the model's
//! classes gets that class's label, otherwise labels follow the subfolders'
//! sorted names; an image outside every subfolder has no label and is
//! refused. Each record remembers its file, so messages and results name it.

use std::path::{Path, PathBuf};

use super::{Format, InputError, Records, Target, image_record, lower_name, read};

/// The largest number of images a folder may hold.
pub const MAX_IMAGES: usize = 1 << 16;

/// Loads a folder of images for `target`.
pub(crate) fn load(dir: &Path, target: &Target<'_>, labelled: bool) -> Result<Records, InputError> {
    let file = dir.display().to_string();
    let io = |e: std::io::Error| InputError::Io {
        file: file.clone(),
        reason: e.to_string(),
    };
    let mut images: Vec<(Option<String>, PathBuf)> = Vec::new();
    let mut classes: Vec<String> = Vec::new();
    for entry in sorted(dir).map_err(io)? {
        if entry.is_dir() {
            let class = entry
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            let inner: Vec<PathBuf> = sorted(&entry)
                .map_err(io)?
                .into_iter()
                .filter(|p| is_image(p))
                .collect();
            if !inner.is_empty() {
                classes.push(class.clone());
                images.extend(inner.into_iter().map(|p| (Some(class.clone()), p)));
            }
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
    let mut out = Records::default();
    let mut labels = Vec::new();
    for (class, path) in &images {
        let name = path.display().to_string();
        let format = Format::of(&lower_name(path)).unwrap_or(Format::Png);
        out.records
            .push(image_record(&name, &read(path)?, format, target)?);
        out.sources.push(name.clone());
        if labelled {
            let Some(class) = class else {
                return Err(InputError::Format {
                    file: name,
                    reason: "an image outside every class subfolder has no label (put it in a folder named by its class)".into(),
                });
            };
            labels.push(label_of(class, &classes, target.classes));
        }
    }
    if labelled {
        out.labels = Some(labels);
    }
    Ok(out)
}

/// The label of a subfolder: its class's index among the model's class
/// names, or its rank among the folder's subfolders.
fn label_of(class: &str, found: &[String], model: Option<&[String]>) -> usize {
    model
        .and_then(|names| names.iter().position(|n| n == class))
        .unwrap_or_else(|| found.iter().position(|c| c == class).unwrap_or(0))
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
