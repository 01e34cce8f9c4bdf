//! CSV records: a table of numeric columns, read whole before the model is
//! known ([`Table::parse`]), then matched to the model's columns
//! ([`Table::records`]): by name when the model names its columns and the
//! file has a header, by position otherwise.

use cryptmed_model::FeatureSchema;

use super::{InputError, Place, Records, no_records};

/// How a CSV file is read, decided before the model is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// Header columns to skip (a patient id, a label): their cells may hold anything.
    pub ignore: Vec<String>,
    /// The file has no header: its first line is a record, and its columns
    /// are the model's in the model's order (the caller's responsibility).
    pub no_header: bool,
    /// One column is an integer class label: the header's `label` column,
    /// or the last column.
    pub labelled: bool,
}

/// A CSV file's numeric columns (those not skipped), every cell parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    file: String,
    /// The header's names of the kept columns, without a header `None`.
    names: Option<Vec<String>>,
    /// The 1-based file column of each kept column.
    columns: Vec<usize>,
    rows: Vec<Vec<f64>>,
    lines: Vec<usize>,
    labels: Option<Vec<usize>>,
    /// The header names the caller skipped, for messages.
    ignored: Vec<String>,
    /// Columns are the model's in order, whatever the model names.
    no_header: bool,
}

/// The cells of a line (trimmed, comma-separated).
fn cells(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// The closest of `names` to `to` (edit distance), for "did you mean".
pub(crate) fn closest<'a>(to: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .min_by_key(|n| strsim::levenshtein(&to.to_lowercase(), &n.to_lowercase()))
}

impl Table {
    /// Parses a CSV file: an optional header (detected: a first line with no
    /// numeric cell; never with `no_header`), then one record per line, blank
    /// lines skipped. Every cell of a kept column must be a finite number
    /// with `|v| < limit`, every line as wide as the header (or the first
    /// record). Errors name the line and the record (see the
    /// [crate documentation](crate)).
    pub fn parse(
        file: &str,
        bytes: &[u8],
        opts: &CsvOptions,
        limit: f64,
    ) -> Result<Table, InputError> {
        let format = |reason: String| InputError::Format {
            file: file.into(),
            reason,
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format(format!("not UTF-8 text (byte {})", e.valid_up_to())))?;
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let mut first = lines.next();
        let header = match first {
            Some((_, l))
                if !opts.no_header && cells(l).iter().all(|c| c.parse::<f64>().is_err()) =>
            {
                first = None;
                Some(cells(l).into_iter().map(String::from).collect::<Vec<_>>())
            }
            _ => None,
        };
        let width = match (&header, first) {
            (Some(h), _) => h.len(),
            (None, Some((_, l))) => cells(l).len(),
            (None, None) => 0,
        };
        let (kept, label) = Self::choose(file, header.as_deref(), width, opts)?;
        let mut t = Table {
            file: file.into(),
            names: header
                .as_ref()
                .map(|h| kept.iter().map(|c| h[*c].clone()).collect()),
            columns: kept.iter().map(|c| c + 1).collect(),
            labels: label.map(|_| Vec::new()),
            ignored: opts.ignore.clone(),
            no_header: opts.no_header,
            ..Table::default()
        };
        for (line_no, line) in first.into_iter().chain(lines) {
            t.push(
                line_no,
                &cells(line),
                width,
                &kept,
                label,
                header.is_some(),
                limit,
            )?;
        }
        if t.rows.is_empty() {
            let why = if header.is_some() {
                "the file has a header and no data"
            } else {
                "the file is empty"
            };
            return Err(no_records(file, why));
        }
        Ok(t)
    }

    /// The 0-based file columns kept as values and the label column, from
    /// the header and the options.
    fn choose(
        file: &str,
        header: Option<&[String]>,
        width: usize,
        opts: &CsvOptions,
    ) -> Result<(Vec<usize>, Option<usize>), InputError> {
        let format = |reason: String| InputError::Format {
            file: file.into(),
            reason,
        };
        let Some(h) = header else {
            if let Some(name) = opts.ignore.first() {
                let why = if opts.no_header {
                    "--no-header"
                } else {
                    "the file has no header"
                };
                return Err(format(format!(
                    "cannot skip column `{name}`: {why}, so no column has a name"
                )));
            }
            let label = opts.labelled.then(|| width.saturating_sub(1));
            return Ok(((0..width).filter(|c| Some(*c) != label).collect(), label));
        };
        for (i, name) in h.iter().enumerate() {
            if h[..i].contains(name) {
                return Err(format(format!(
                    "the header names column `{name}` twice (columns {} and {})",
                    h.iter().position(|n| n == name).unwrap_or(0) + 1,
                    i + 1
                )));
            }
        }
        for name in &opts.ignore {
            if !h.contains(name) {
                let hint = closest(name, h.iter().map(String::as_str))
                    .map(|c| format!(" (the closest is `{c}`)"))
                    .unwrap_or_default();
                return Err(format(format!(
                    "--ignore-column `{name}` names no column of the header{hint}"
                )));
            }
        }
        let label = opts.labelled.then(|| {
            h.iter()
                .position(|n| n == "label")
                .unwrap_or(width.saturating_sub(1))
        });
        let kept = (0..width)
            .filter(|c| Some(*c) != label && !opts.ignore.contains(&h[*c]))
            .collect();
        Ok((kept, label))
    }

    /// Parses one line's cells into a row (and a label).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        line_no: usize,
        cells: &[&str],
        width: usize,
        kept: &[usize],
        label: Option<usize>,
        header: bool,
        limit: f64,
    ) -> Result<(), InputError> {
        let place = Place {
            line: Some(line_no),
            record: self.rows.len(),
        };
        if cells.len() != width {
            let against = if header {
                "the header has"
            } else {
                "the first record has"
            };
            return Err(InputError::Format {
                file: self.file.clone(),
                reason: format!("{place}: {} values, {against} {width}", cells.len()),
            });
        }
        let value = |column: usize, reason: String| InputError::Value {
            file: self.file.clone(),
            place,
            column,
            reason,
        };
        let mut row = Vec::with_capacity(kept.len());
        for c in kept {
            let cell = cells[*c];
            let v: f64 = cell
                .parse()
                .map_err(|_| value(c + 1, format!("`{cell}` is not a number")))?;
            if !v.is_finite() {
                return Err(value(c + 1, format!("{v} is not a finite number")));
            }
            if v.abs() >= limit {
                return Err(value(
                    c + 1,
                    format!(
                        "{v} is outside the range a record value may take, (-{limit}, {limit})"
                    ),
                ));
            }
            row.push(v);
        }
        if let (Some(labels), Some(c)) = (&mut self.labels, label) {
            let cell = cells[c];
            let l: f64 = cell
                .parse()
                .map_err(|_| value(c + 1, format!("label `{cell}` is not a number")))?;
            if !(l >= 0.0 && l.fract() == 0.0 && l < 1e9) {
                return Err(value(c + 1, format!("label `{cell}` is not a class index")));
            }
            labels.push(l as usize);
        }
        self.rows.push(row);
        self.lines.push(line_no);
        Ok(())
    }

    /// The header's names of the kept columns (`None` without a header).
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// How many columns are kept (all but the skipped ones and the label).
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The records for a model of `len` values per record whose columns are
    /// `schema` (when it names them). With a header and a schema, columns
    /// are matched by name, whatever their order: a model column the file
    /// lacks, or a file column the model does not know, is refused naming
    /// it and the closest name on the other side. Without a schema, or with
    /// `no_header`, columns are taken in file order and their count must be
    /// `len`. A file without a header for a model that names its columns is
    /// refused unless it was read with `no_header`.
    pub fn records(
        &self,
        len: usize,
        schema: Option<&FeatureSchema>,
    ) -> Result<Records, InputError> {
        let order = match (schema, &self.names) {
            (Some(s), Some(names)) => self.by_name(&s.names(), names)?,
            (Some(s), None) if !self.no_header => return Err(self.needs_header(s)),
            _ => self.by_position(len)?,
        };
        Ok(Records {
            records: self
                .rows
                .iter()
                .map(|r| order.iter().map(|k| r[*k]).collect())
                .collect(),
            labels: self.labels.clone(),
            lines: self.lines.clone(),
            columns: order.iter().map(|k| self.columns[*k]).collect(),
            ..Records::default()
        })
    }

    /// For each model column, the kept column of the same name.
    fn by_name(&self, model: &[&str], names: &[String]) -> Result<Vec<usize>, InputError> {
        let format = |reason: String| InputError::Format {
            file: self.file.clone(),
            reason,
        };
        if let Some((k, name)) = names
            .iter()
            .enumerate()
            .find(|(_, n)| !model.contains(&n.as_str()))
        {
            let near = closest(name, model.iter().copied()).unwrap_or("");
            let skipped = match self.ignored.is_empty() {
                true => String::new(),
                false => format!(" (skipped: {})", self.ignored.join(", ")),
            };
            return Err(format(format!(
                "column {} `{name}` is not one of the model's columns (the closest is `{near}`); \
                 skip a column the model does not take with --ignore-column \"{name}\"{skipped}",
                self.columns[k]
            )));
        }
        model
            .iter()
            .map(|m| {
                names.iter().position(|n| n == m).ok_or_else(|| {
                    let near = closest(m, names.iter().map(String::as_str))
                        .map(|c| format!(" (the closest in the file is `{c}`)"))
                        .unwrap_or_default();
                    format(format!("the model's column `{m}` is missing{near}"))
                })
            })
            .collect()
    }

    /// The kept columns in file order, if there are `len` of them.
    fn by_position(&self, len: usize) -> Result<Vec<usize>, InputError> {
        let found = self.columns.len();
        if found == len {
            return Ok((0..len).collect());
        }
        let hint = match (found == len + 1, self.labels.is_some(), &self.names) {
            (true, false, Some(_)) => {
                "; a column too many (a label, an id)? skip it with --ignore-column NAME"
            }
            (true, false, None) => {
                "; a column too many? a label in the last column needs a header to skip it"
            }
            _ => "",
        };
        let label = if self.labels.is_some() {
            " and a label"
        } else {
            ""
        };
        Err(InputError::Format {
            file: self.file.clone(),
            reason: format!("{found} values per record, the model expects {len}{label}{hint}"),
        })
    }

    /// The refusal of a headerless file for a model that names its columns.
    fn needs_header(&self, s: &FeatureSchema) -> InputError {
        let names = s.names();
        let shown: Vec<&str> = names.iter().take(4).copied().collect();
        let more = if names.len() > 4 { ", ..." } else { "" };
        InputError::Format {
            file: self.file.clone(),
            reason: format!(
                "the file has no header, and the model names its {} columns ({}{more}): add a header \
                 row naming them, or pass --no-header to read the columns by position (their order \
                 is then your responsibility)",
                names.len(),
                shown.join(", ")
            ),
        }
    }
}

/// CSV records of `len` values each, columns by position, with `labelled`
/// an integer class label in the last column (see [`Table`]).
pub fn csv(file: &str, bytes: &[u8], len: usize, labelled: bool) -> Result<Records, InputError> {
    let opts = CsvOptions {
        labelled,
        ..CsvOptions::default()
    };
    Table::parse(file, bytes, &opts, f64::INFINITY)?.records(len, None)
}
