//! Record loaders: CSV, NPY, IDX (MNIST, gzipped or not), PNG and the
//! CIFAR-10 binary format, into flat records of `f64` checked against the
//! model's input shape. Every refusal names the file, and where it applies
//! the row and column (1-based, as an editor shows them).

use std::io::Read;
use std::path::Path;

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
    /// The file is not in the format its extension says.
    #[error("{file}: {reason}")]
    Format {
        /// File.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is not a finite number or is out of range.
    #[error("{file}: row {row}, column {column}: {reason}")]
    Value {
        /// File.
        file: String,
        /// 1-based row (record).
        row: usize,
        /// 1-based column (feature).
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// A record has the wrong number of values.
    #[error("{file}: row {row}: {found} values, the model expects {expected}")]
    Shape {
        /// File.
        file: String,
        /// 1-based row (record).
        row: usize,
        /// Values found.
        found: usize,
        /// Values expected.
        expected: usize,
    },
}

/// Records, and labels when the file carries them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    /// One flat record per entry.
    pub records: Vec<Vec<f64>>,
    /// One label per record, when known.
    pub labels: Option<Vec<usize>>,
}

/// Loads records of `len` values each from `path`, choosing the format by
/// extension (`.csv`, `.npy`, `.png`, `.bin` for CIFAR-10, anything with
/// `idx` or `ubyte` for IDX). `labelled` (CSV) means the last column is an
/// integer label. Values must satisfy `|v| < limit`.
pub fn load(path: &Path, len: usize, labelled: bool, limit: f64) -> Result<Records, InputError> {
    let file = path.display().to_string();
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = std::fs::read(path).map_err(|e| InputError::Io {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    let r = if name.ends_with(".csv") || name.ends_with(".txt") {
        csv(&file, &bytes, len, labelled)?
    } else if name.ends_with(".npy") {
        npy(&file, &bytes, len)?
    } else if name.ends_with(".png") {
        png(&file, &bytes, len)?
    } else if name.contains("idx") || name.contains("ubyte") {
        idx(&file, &bytes, len)?
    } else if name.ends_with(".bin") {
        cifar(&file, &bytes, len)?
    } else {
        return Err(InputError::Format {
            file,
            reason: "unknown format: use .csv, .npy, .png, an IDX file or a CIFAR-10 .bin".into(),
        });
    };
    check(&file, &r.records, limit)?;
    Ok(r)
}

fn check(file: &str, records: &[Vec<f64>], limit: f64) -> Result<(), InputError> {
    for (r, rec) in records.iter().enumerate() {
        for (c, v) in rec.iter().enumerate() {
            if !v.is_finite() {
                return Err(InputError::Value {
                    file: file.into(),
                    row: r + 1,
                    column: c + 1,
                    reason: format!("{v} is not a finite number"),
                });
            }
            if v.abs() >= limit {
                return Err(InputError::Value {
                    file: file.into(),
                    row: r + 1,
                    column: c + 1,
                    reason: format!("{v} is outside the fixed-point range (|v| < {limit})"),
                });
            }
        }
    }
    Ok(())
}

/// CSV: numeric cells, an optional header (detected: a first row with a non-numeric cell), one record per row.
pub fn csv(file: &str, bytes: &[u8], len: usize, labelled: bool) -> Result<Records, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|_| InputError::Format {
        file: file.into(),
        reason: "not UTF-8 text".into(),
    })?;
    let mut records = Vec::new();
    let mut labels = Vec::new();
    let width = len + usize::from(labelled);
    for (i, line) in text.lines().enumerate() {
        let row = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if i == 0 && cells.iter().all(|c| c.parse::<f64>().is_err()) {
            continue; // header
        }
        if cells.len() != width {
            return Err(InputError::Shape {
                file: file.into(),
                row,
                found: cells.len(),
                expected: width,
            });
        }
        let mut rec = Vec::with_capacity(len);
        for (c, cell) in cells.iter().enumerate().take(len) {
            let v: f64 = cell.parse().map_err(|_| InputError::Value {
                file: file.into(),
                row,
                column: c + 1,
                reason: format!("`{cell}` is not a number"),
            })?;
            rec.push(v);
        }
        if labelled {
            let cell = cells[len];
            let l: f64 = cell.parse().map_err(|_| InputError::Value {
                file: file.into(),
                row,
                column: width,
                reason: format!("label `{cell}` is not a number"),
            })?;
            if l < 0.0 || l.fract() != 0.0 {
                return Err(InputError::Value {
                    file: file.into(),
                    row,
                    column: width,
                    reason: format!("label `{cell}` is not a class index"),
                });
            }
            labels.push(l as usize);
        }
        records.push(rec);
    }
    if records.is_empty() {
        return Err(InputError::Format {
            file: file.into(),
            reason: "no records".into(),
        });
    }
    Ok(Records {
        records,
        labels: labelled.then_some(labels),
    })
}

/// NPY (version 1 or 2, little-endian float32/float64, C order), with or without a leading batch axis.
pub fn npy(file: &str, bytes: &[u8], len: usize) -> Result<Records, InputError> {
    let bad = |r: &str| InputError::Format {
        file: file.into(),
        reason: r.into(),
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not an NPY file (bad magic)"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported NPY version {v}"))),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + hlen)
            .ok_or_else(|| bad("truncated header"))?,
    )
    .map_err(|_| bad("header is not text"))?;
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran-ordered arrays are not supported"));
    }
    let width = if header.contains("'<f8'") {
        8
    } else if header.contains("'<f4'") {
        4
    } else {
        return Err(bad("only little-endian float32 or float64 arrays"));
    };
    let data = &bytes[start + hlen..];
    if !data.len().is_multiple_of(width) {
        return Err(bad("truncated data"));
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
    split(file, values, len)
}

fn split(file: &str, values: Vec<f64>, len: usize) -> Result<Records, InputError> {
    if len == 0 || values.is_empty() || !values.len().is_multiple_of(len) {
        return Err(InputError::Shape {
            file: file.into(),
            row: 1,
            found: values.len(),
            expected: len,
        });
    }
    Ok(Records {
        records: values.chunks(len).map(<[f64]>::to_vec).collect(),
        labels: None,
    })
}

/// IDX (the MNIST format), gzipped or not; unsigned bytes are scaled to `[0, 1]`.
/// A label file (rank 1) yields labels only.
pub fn idx(file: &str, bytes: &[u8], len: usize) -> Result<Records, InputError> {
    let bad = |r: &str| InputError::Format {
        file: file.into(),
        reason: r.into(),
    };
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| bad(&format!("gzip: {e}")))?;
        raw = out;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic)"));
    }
    let (ty, rank) = (bytes[2], bytes[3] as usize);
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            bytes
                .get(4 + 4 * i..8 + 4 * i)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        })
        .collect::<Option<_>>()
        .ok_or_else(|| bad("truncated header"))?;
    let body = &bytes[4 + 4 * rank..];
    let count: usize = dims.iter().product();
    if ty != 0x08 {
        return Err(bad("only unsigned-byte IDX files"));
    }
    if body.len() < count {
        return Err(bad(&format!(
            "truncated: {} bytes for {count} values",
            body.len()
        )));
    }
    if rank == 1 {
        return Ok(Records {
            records: vec![],
            labels: Some(body[..count].iter().map(|b| *b as usize).collect()),
        });
    }
    split(
        file,
        body[..count].iter().map(|b| *b as f64 / 255.0).collect(),
        len,
    )
}

/// PNG, grayscale or RGB(A, alpha dropped), to CHW in `[0, 1]`.
pub fn png(file: &str, bytes: &[u8], len: usize) -> Result<Records, InputError> {
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
    let mut out = vec![0.0; keep * w * h];
    for y in 0..h {
        for x in 0..w {
            for c in 0..keep {
                out[(c * h + y) * w + x] = buf[(y * w + x) * ch + c] as f64 / 255.0;
            }
        }
    }
    if out.len() != len {
        return Err(InputError::Shape {
            file: file.into(),
            row: 1,
            found: out.len(),
            expected: len,
        });
    }
    Ok(Records {
        records: vec![out],
        labels: None,
    })
}

/// The CIFAR-10 binary format: records of one label byte and 3072 pixel bytes (R, G, B planes), scaled to `[0, 1]`.
pub fn cifar(file: &str, bytes: &[u8], len: usize) -> Result<Records, InputError> {
    const REC: usize = 1 + 3072;
    if len != 3072 {
        return Err(InputError::Shape {
            file: file.into(),
            row: 1,
            found: 3072,
            expected: len,
        });
    }
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_and_labels_and_each_kind_of_bad_record() {
        let ok = csv("a.csv", b"f1,f2,label\n1,2.5,0\n-3,4e-2,1\n", 2, true).unwrap();
        assert_eq!(ok.records, vec![vec![1.0, 2.5], vec![-3.0, 0.04]]);
        assert_eq!(ok.labels, Some(vec![0, 1]));
        let e = csv("a.csv", b"1,2\n3\n", 2, false).unwrap_err().to_string();
        assert_eq!(e, "a.csv: row 2: 1 values, the model expects 2");
        let e = csv("a.csv", b"1,x\n", 2, false).unwrap_err().to_string();
        assert_eq!(e, "a.csv: row 1, column 2: `x` is not a number");
        let e = csv("a.csv", b"1,2\n1,NaN\n", 2, false)
            .and_then(|r| check("a.csv", &r.records, 1e9).map(|_| r))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 2, column 2") && e.contains("not a finite"),
            "{e}"
        );
        let e = check("a.csv", &[vec![1.0, 1e12]], 1e9)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1, column 2") && e.contains("outside the fixed-point range"),
            "{e}"
        );
        assert!(csv("a.csv", b"", 2, false).is_err());
    }

    #[test]
    fn npy_float32_and_float64_with_and_without_batch_axis() {
        fn make(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
            let mut h =
                format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
            while (10 + h.len() + 1) % 64 != 0 {
                h.push(' ');
            }
            h.push('\n');
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend((h.len() as u16).to_le_bytes());
            v.extend(h.as_bytes());
            v.extend(data);
            v
        }
        let f8: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            npy("x.npy", &make("<f8", "(2, 2)", &f8), 2)
                .unwrap()
                .records,
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
        let f4: Vec<u8> = [0.5f32, 1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            npy("x.npy", &make("<f4", "(2,)", &f4), 2).unwrap().records,
            vec![vec![0.5, 1.5]]
        );
        assert!(npy("x.npy", &make("<i8", "(2,)", &f8[..16]), 2).is_err());
        assert!(npy("x.npy", b"garbage!!!!!", 2).is_err());
        assert!(matches!(
            npy("x.npy", &make("<f8", "(3,)", &f8[..24]), 2),
            Err(InputError::Shape { .. })
        ));
    }

    #[test]
    fn idx_plain_and_gzipped_images_and_labels() {
        let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        img.extend([0u8, 255, 51, 102]);
        let r = idx("t10k-images-idx3-ubyte", &img, 2).unwrap();
        assert_eq!(r.records, vec![vec![0.0, 1.0], vec![0.2, 0.4]]);
        let mut gz = Vec::new();
        {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
            e.write_all(&img).unwrap();
        }
        assert_eq!(idx("x.gz", &gz, 2).unwrap().records.len(), 2);
        let lab = idx("labels", &[0, 0, 8, 1, 0, 0, 0, 3, 7, 1, 9], 1).unwrap();
        assert_eq!(lab.labels, Some(vec![7, 1, 9]));
        assert!(idx("x", &img[..17], 2).is_err());
    }

    #[test]
    fn cifar_binary_reader_on_a_generated_file() {
        let mut bytes = Vec::new();
        for label in [3u8, 9] {
            bytes.push(label);
            bytes.extend((0..3072).map(|i| (i % 256) as u8));
        }
        let r = cifar("data_batch_1.bin", &bytes, 3072).unwrap();
        assert_eq!(r.labels, Some(vec![3, 9]));
        assert_eq!(r.records[1][1024], 0.0); // first green pixel
        assert_eq!(r.records[0][255], 1.0);
        assert!(cifar("x.bin", &bytes[..100], 3072).is_err());
    }

    #[test]
    fn png_grayscale_and_rgb() {
        for (color, ch) in [
            (png::ColorType::Grayscale, 1usize),
            (png::ColorType::Rgb, 3),
        ] {
            let mut out = Vec::new();
            {
                let mut enc = png::Encoder::new(&mut out, 2, 1);
                enc.set_color(color);
                enc.set_depth(png::BitDepth::Eight);
                let mut w = enc.write_header().unwrap();
                w.write_image_data(&vec![255u8; 2 * ch]).unwrap();
            }
            let r = png("x.png", &out, 2 * ch).unwrap();
            assert_eq!(r.records[0], vec![1.0; 2 * ch]);
            assert!(matches!(
                png("x.png", &out, 5),
                Err(InputError::Shape { .. })
            ));
        }
        assert!(png("x.png", b"not a png", 4).is_err());
    }
}
