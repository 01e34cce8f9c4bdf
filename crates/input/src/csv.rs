//! CSV records: numeric cells, an optional header, one record per line.

use super::{InputError, Place, Records, no_records};

/// CSV: numeric cells, an optional header (detected: a first line with no
/// numeric cell), one record of `len` values per line, then with `labelled`
/// an integer class label. Blank lines are skipped. Errors name the line
/// and the record (see the [module documentation](super)).
pub fn csv(file: &str, bytes: &[u8], len: usize, labelled: bool) -> Result<Records, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|e| InputError::Format {
        file: file.into(),
        reason: format!("not UTF-8 text (byte {})", e.valid_up_to()),
    })?;
    let mut out = Records {
        labels: labelled.then(Vec::new),
        ..Records::default()
    };
    let width = len + usize::from(labelled);
    let mut header = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if i == 0 && cells.iter().all(|c| c.parse::<f64>().is_err()) {
            header = true;
            continue;
        }
        let place = Place {
            line: Some(line_no),
            record: out.records.len(),
        };
        if cells.len() != width {
            return Err(InputError::Shape {
                file: file.into(),
                place,
                found: cells.len(),
                expected: len,
                labelled,
            });
        }
        let value = |column: usize, reason: String| InputError::Value {
            file: file.into(),
            place,
            column,
            reason,
        };
        let mut rec = Vec::with_capacity(len);
        for (c, cell) in cells.iter().enumerate().take(len) {
            let v: f64 = cell
                .parse()
                .map_err(|_| value(c + 1, format!("`{cell}` is not a number")))?;
            rec.push(v);
        }
        if let Some(labels) = &mut out.labels {
            let cell = cells[len];
            let l: f64 = cell
                .parse()
                .map_err(|_| value(width, format!("label `{cell}` is not a number")))?;
            if !(l >= 0.0 && l.fract() == 0.0 && l < 1e9) {
                return Err(value(width, format!("label `{cell}` is not a class index")));
            }
            labels.push(l as usize);
        }
        out.records.push(rec);
        out.lines.push(line_no);
    }
    if out.records.is_empty() {
        let why = if header {
            "the file has a header and no data"
        } else {
            "the file is empty"
        };
        return Err(no_records(file, why));
    }
    Ok(out)
}
