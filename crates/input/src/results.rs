//! The client's results file: never overwritten by accident, never continued
//! with other records, written as results come.
//!
//! A results file starts with the [`Run`] it belongs to (a fingerprint of
//! the records, the model's digest, the output policy): a `#` comment line
//! in CSV, a first `{"cryptmed_run": ...}` line in JSON lines. Then CSV has
//! a header (`record,label,class_name`, then a probability or logit column
//! per class, named by class: `p_benign`, `logit_benign`, and `implausible`
//! when implausible values are allowed), and one line per record; JSON
//! lines have one object per record with the same keys.
//!
//! [`Existing::read`] looks at a file already there without changing it;
//! [`Writer`] opens the output only when the first results arrive: a run
//! refused before that leaves an existing file exactly as it was.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a results file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
    /// A mistake in how the command was called: the file exists without
    /// `--resume` or `--force`, holds the other format, or is not results.
    #[error("{0}")]
    Usage(String),
    /// `--resume` on results of another run (records, model or policy).
    #[error("{0}")]
    OtherRun(String),
    /// Reading or writing the file failed.
    #[error("{what} {file}: {cause}")]
    Io {
        /// `reading`, `writing`, ...
        what: &'static str,
        /// The file.
        file: String,
        /// The cause.
        cause: std::io::Error,
    },
}

/// What a results file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// [`crate::Records::fingerprint`] of the records diagnosed.
    pub input: String,
    /// The model's architecture digest (hex), as both parties checked it.
    pub model: String,
    /// The output policy (`label`, `probabilities`, `logits`).
    pub reveal: String,
    /// Whether implausible values were let through (and marked).
    pub allow_implausible: bool,
}

/// The CSV comment that carries the run.
const CSV_RUN: &str = "# cryptmed run ";
/// The JSON key that carries the run.
const JSON_RUN: &str = "cryptmed_run";

impl Run {
    /// The file's first line.
    fn line(&self, json: bool) -> String {
        let value = serde_json::to_string(self).unwrap_or_default();
        if json {
            format!("{{\"{JSON_RUN}\":{value}}}\n")
        } else {
            format!("{CSV_RUN}{value}\n")
        }
    }

    /// Parses a first line written by [`Run::line`].
    fn parse(line: &str) -> Option<Run> {
        if let Some(v) = line.strip_prefix(CSV_RUN) {
            return serde_json::from_str(v).ok();
        }
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        serde_json::from_value(v.get(JSON_RUN)?.clone()).ok()
    }

    /// What differs from `other`, in words (empty when nothing does).
    pub fn differences(&self, other: &Run) -> Vec<String> {
        let mut d = Vec::new();
        if self.input != other.input {
            d.push("the input records differ (another file, or the same file changed)".to_string());
        }
        if self.model != other.model {
            d.push(format!(
                "the model differs (digest {} here, {} in the file)",
                short(&self.model),
                short(&other.model)
            ));
        }
        if self.reveal != other.reveal {
            d.push(format!(
                "the output policy differs ({} here, {} in the file)",
                self.reveal, other.reveal
            ));
        }
        if self.allow_implausible != other.allow_implausible {
            d.push("--allow-implausible differs".to_string());
        }
        d
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// A results file already there, as read (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// The run it belongs to.
    pub run: Run,
    /// Records done: the last complete result's index plus one.
    pub done: usize,
    /// Bytes of complete lines (a partly written last line follows).
    pub keep: u64,
    /// Bytes of a partly written last line (dropped when the run continues).
    pub partial: u64,
}

impl Existing {
    /// Reads the results file at `path` for a run writing JSON lines or
    /// CSV: `None` when there is none (absent, or empty). Refuses a file of
    /// the other format, or one that is not results of `cryptmed diagnose`
    /// with its run.
    pub fn read(path: &Path, json: bool) -> Result<Option<Existing>, ResultsError> {
        let name = path.display();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(ResultsError::Io {
                    what: "reading",
                    file: name.to_string(),
                    cause,
                });
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&bytes[..keep]);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let not_results = || {
            ResultsError::Usage(format!(
                "{name} does not hold results of cryptmed diagnose with the run they belong to \
                 (an older version wrote none): write to another --output, or replace it with --force"
            ))
        };
        let run = lines
            .first()
            .and_then(|l| Run::parse(l))
            .ok_or_else(not_results)?;
        let is_json = lines[0].starts_with('{');
        if is_json != json {
            let (has, flag) = if is_json {
                ("JSON", "with --json")
            } else {
                ("CSV", "without --json")
            };
            return Err(ResultsError::Usage(format!(
                "{name} holds {has} results; continue them {flag}, or write to another --output"
            )));
        }
        let results = if is_json {
            &lines[1..]
        } else {
            lines.get(2..).unwrap_or(&[])
        };
        let done = match results.last() {
            None => 0,
            Some(last) => {
                let index = if is_json {
                    serde_json::from_str::<serde_json::Value>(last)
                        .ok()
                        .and_then(|v| v["record"].as_u64())
                } else {
                    last.split(',').next().and_then(|f| f.parse::<u64>().ok())
                };
                let index = index.ok_or_else(|| {
                    ResultsError::Usage(format!(
                        "the last line of {name} is not a result: {last:?}"
                    ))
                })?;
                index as usize + 1
            }
        };
        Ok(Some(Existing {
            run,
            done,
            keep: keep as u64,
            partial: (bytes.len() - keep) as u64,
        }))
    }

    /// Checks that `run` may continue this file: the same records, model
    /// and policy, and no more results than records.
    pub fn check(&self, path: &Path, run: &Run, records: usize) -> Result<(), ResultsError> {
        let d = run.differences(&self.run);
        if !d.is_empty() {
            return Err(ResultsError::OtherRun(format!(
                "cannot resume {}: it holds results of another run: {}; it is left as it was \
                 (write to another --output, or replace it with --force)",
                path.display(),
                d.join("; ")
            )));
        }
        if self.done > records {
            return Err(ResultsError::OtherRun(format!(
                "cannot resume {}: it holds results up to record {}, the input has {records} records",
                path.display(),
                self.done - 1
            )));
        }
        Ok(())
    }
}

/// The columns of a results file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// The probability or logit columns, one per class (`p_benign`, `logit_3`).
    pub values: Vec<String>,
    /// Whether an `implausible` column follows.
    pub implausible: bool,
}

/// A column name made of a class name: letters, digits and `_` kept, any
/// other character `_`, so CSV and JSON keys stay plain.
fn column_name(prefix: &str, class: &str) -> String {
    let plain: String = class
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{plain}")
}

impl Columns {
    /// Columns for `outputs` values per result revealed as `kind`
    /// (`probabilities` or `logits`; `None` for labels only), named by the
    /// model's classes when it has a name for each.
    pub fn new(
        kind: Option<&str>,
        outputs: usize,
        classes: Option<&[String]>,
        implausible: bool,
    ) -> Columns {
        let prefix = match kind {
            Some("probabilities") => "p",
            Some(_) => "logit",
            None => {
                return Columns {
                    values: Vec::new(),
                    implausible,
                };
            }
        };
        let named = classes.filter(|c| c.len() == outputs);
        let values = (0..outputs)
            .map(|i| match named {
                Some(c) => column_name(prefix, &c[i]),
                None => format!("{prefix}{i}"),
            })
            .collect();
        Columns {
            values,
            implausible,
        }
    }

    /// The CSV header line.
    pub fn header(&self) -> String {
        let mut h = String::from("record,label,class_name");
        for v in &self.values {
            h.push(',');
            h.push_str(v);
        }
        if self.implausible {
            h.push_str(",implausible");
        }
        h.push('\n');
        h
    }
}

/// One record's result, as the file shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<'a> {
    /// The record, counted from 0.
    pub record: usize,
    /// The predicted class.
    pub label: usize,
    /// Its name, if the model names its classes.
    pub class_name: Option<&'a str>,
    /// The probabilities or logits, one per value column.
    pub values: &'a [f64],
    /// The names of its columns outside their plausible range (let through).
    pub implausible: &'a [String],
}

impl Columns {
    /// One result as a line: CSV, or a JSON object with the CSV's keys.
    pub fn line(&self, r: &Outcome<'_>, json: bool) -> String {
        if json {
            // Keys in the CSV's order (a JSON map would sort them).
            let mut fields = vec![
                ("record", serde_json::json!(r.record)),
                ("label", serde_json::json!(r.label)),
                ("class_name", serde_json::json!(r.class_name)),
            ];
            for (k, v) in self.values.iter().zip(r.values) {
                fields.push((k.as_str(), serde_json::json!(v)));
            }
            if self.implausible {
                fields.push(("implausible", serde_json::json!(r.implausible)));
            }
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::json!(k)))
                .collect();
            return format!("{{{}}}\n", body.join(","));
        }
        let mut s = format!("{},{},{}", r.record, r.label, r.class_name.unwrap_or(""));
        for v in r.values.iter().take(self.values.len()) {
            s.push_str(&format!(",{v:.6}"));
        }
        if self.implausible {
            s.push(',');
            s.push_str(&r.implausible.join(";"));
        }
        s.push('\n');
        s
    }
}

/// How the output file is to be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A new file (or an empty one).
    New,
    /// Replace what is there (`--force`).
    Replace,
    /// Continue an existing file of the same run (`--resume`).
    Continue(Existing),
}

/// Writes results as they come; opens (and, for [`Mode::Replace`],
/// truncates) the file only when the first results arrive.
pub struct Writer {
    path: Option<PathBuf>,
    mode: Mode,
    json: bool,
    run: Run,
    columns: Columns,
    out: Option<Box<dyn Write>>,
}

impl Writer {
    /// A writer to `path` (standard output for `None`).
    pub fn new(path: Option<PathBuf>, mode: Mode, json: bool, run: Run, columns: Columns) -> Self {
        Writer {
            path,
            mode,
            json,
            run,
            columns,
            out: None,
        }
    }

    /// Where results go, for messages.
    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or("standard output".into(), |p| p.display().to_string())
    }

    /// Opens the output: a new or replaced file starts with the run (and
    /// the CSV header); a continued one loses its partly written last line.
    fn open(&mut self) -> Result<Box<dyn Write>, std::io::Error> {
        let Some(path) = &self.path else {
            let mut out: Box<dyn Write> = Box::new(std::io::stdout());
            self.start(&mut out)?;
            return Ok(out);
        };
        let mut out: Box<dyn Write> = match &self.mode {
            Mode::Continue(e) => {
                let f = OpenOptions::new().write(true).open(path)?;
                f.set_len(e.keep)?;
                if e.partial > 0 {
                    eprintln!(
                        "note: dropped a partly written last line of {} ({} bytes)",
                        path.display(),
                        e.partial
                    );
                }
                let f = OpenOptions::new().append(true).open(path)?;
                return Ok(Box::new(BufWriter::new(f)));
            }
            _ => Box::new(BufWriter::new(File::create(path)?)),
        };
        self.start(&mut out)?;
        Ok(out)
    }

    fn start(&self, out: &mut Box<dyn Write>) -> std::io::Result<()> {
        out.write_all(self.run.line(self.json).as_bytes())?;
        if !self.json {
            out.write_all(self.columns.header().as_bytes())?;
        }
        Ok(())
    }

    /// Writes results and flushes them.
    pub fn write(&mut self, results: &[Outcome<'_>]) -> Result<(), ResultsError> {
        let name = self.name();
        let io = |cause| ResultsError::Io {
            what: "writing results to",
            file: name.clone(),
            cause,
        };
        if self.out.is_none() {
            self.out = Some(self.open().map_err(io)?);
        }
        let json = self.json;
        let text: String = results.iter().map(|r| self.columns.line(r, json)).collect();
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(io)
    }
}
