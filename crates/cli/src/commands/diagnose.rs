//! `cryptmed diagnose`: the client, diagnosing records with a remote provider.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cryptmed_engine::Prediction;
use cryptmed_input::Records;
use cryptmed_service::ServiceError;
use cryptmed_service::client::{ClientSetup, SessionInfo, diagnose_with_progress};

use super::{NetArgs, RevealArg, UsageError};

/// Arguments of `cryptmed diagnose`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed diagnose --server provider.example:7200 --dealer dealer.example:7100 --ca certs/ca.pem \\\n      --cert certs/client.pem --key certs/client.key --input records.csv --output results.csv\n  cryptmed diagnose ... --input records.csv --output results.jsonl --json --resume\n\nResults are written as they come: CSV (record,label,class_name,...) or, with --json, one JSON object per line.\n--resume continues after the last complete result in --output (same format)."
)]
pub(crate) struct Args {
    /// The provider (`host:port`).
    #[arg(long, value_name = "ADDR")]
    server: String,
    /// The dealer this client trusts (`host:port`).
    #[arg(long, value_name = "ADDR")]
    dealer: String,
    /// Records: CSV (one per row, optional header), NPY, IDX or PNG.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Where to write results (default: standard output).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// One JSON object per record per line instead of CSV.
    #[arg(long)]
    json: bool,
    /// Continue after the last complete result in --output (a partly written last line is dropped).
    #[arg(long, requires = "output")]
    resume: bool,
    /// Records per batch (a batch shares its rounds).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Append each batch's report (engine report and dealer-link bytes) as a JSON line to FILE.
    #[arg(long, hide = true, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Refuse the session unless the provider reveals exactly this.
    #[arg(long, value_enum)]
    reveal: Option<RevealArg>,
    #[command(flatten)]
    net: NetArgs,
}

/// Runs `cryptmed diagnose`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let limits = args.net.limits()?;
    let security = args.net.security()?;
    let resume = match (&args.output, args.resume) {
        (Some(p), true) => Resume::read(p, args.json)?,
        _ => Resume::default(),
    };
    let done = resume.done;
    let setup = ClientSetup {
        server: args.server.clone(),
        dealer: args.dealer.clone(),
        security,
        limits,
        batch: args.batch,
        reveal: args.reveal.map(Into::into),
    };
    let out_name = args
        .output
        .as_ref()
        .map_or("standard output".to_string(), |p| p.display().to_string());
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(args.resume)
                .write(true)
                .truncate(!args.resume)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    let write_err = |e: std::io::Error| ServiceError::Io {
        what: format!("writing results to {out_name}"),
        cause: e,
    };
    let mut total = None;
    let mut finished = done;
    let mut header_written = resume.header;
    let names: std::cell::RefCell<Option<Vec<String>>> = std::cell::RefCell::new(None);
    let bar: std::cell::RefCell<Option<indicatif::ProgressBar>> = std::cell::RefCell::new(None);
    let input = args.input.clone();
    // The loaded records, kept to name the line of a record the session refuses.
    let loaded: std::cell::RefCell<Records> = std::cell::RefCell::default();
    let result = diagnose_with_progress(
        &setup,
        super::layer_progress(),
        |info: &SessionInfo| {
            *names.borrow_mut() = info.class_names.clone();
            let set = super::load_records(&input, &info.network, false)
                .map_err(|e| ServiceError::Input(super::render(&e)))?;
            let records = set.records.clone();
            *loaded.borrow_mut() = set;
            total = Some(records.len());
            if done > records.len() {
                return Err(ServiceError::Input(format!(
                    "the output already holds results up to record {} but the input has only {} records",
                    done - 1,
                    records.len()
                )));
            }
            let todo = records[done..].to_vec();
            if std::io::stderr().is_terminal() {
                let b = indicatif::ProgressBar::new(todo.len() as u64);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} records {elapsed} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                *bar.borrow_mut() = Some(b);
            }
            Ok(todo)
        },
        |first, preds, report| {
            if let Some(path) = &args.report {
                // The batch's report, and this process's peak memory so far.
                let mut value = serde_json::to_value(report).unwrap_or_default();
                value["peak_rss_bytes"] = super::peak_rss(None).into();
                let line = value.to_string() + "\n";
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .map_err(|e| ServiceError::Io {
                        what: format!("writing the report to {}", path.display()),
                        cause: e,
                    })?;
            }
            for (k, p) in preds.iter().enumerate() {
                let line = format_result(
                    done + first + k,
                    p,
                    names.borrow().as_deref(),
                    args.json,
                    &mut header_written,
                );
                out.write_all(line.as_bytes()).map_err(write_err)?;
            }
            out.flush().map_err(write_err)?;
            finished += preds.len();
            if let Some(b) = bar.borrow().as_ref() {
                b.inc(preds.len() as u64);
            }
            Ok(())
        },
    );
    if let Some(b) = bar.borrow().as_ref() {
        b.finish_and_clear();
    }
    // A record the engine refused (against the provider's per-column limits,
    // which arrive with the session): name its file, line and column.
    let result = result.map_err(|e| match &e {
        ServiceError::Engine(engine) => super::record_error(
            &args.input.display().to_string(),
            &loaded.borrow(),
            done,
            engine,
        )
        .map_or_else(|| anyhow::Error::new(e), anyhow::Error::new),
        _ => anyhow::Error::new(e),
    });
    match result {
        Ok(_) => {
            eprintln!(
                "diagnosed {} records ({} in this run)",
                finished,
                finished - done
            );
            Ok(())
        }
        // Nothing finished: the error itself says what failed.
        Err(e) if finished == 0 => Err(e),
        Err(e) => {
            let of = total.map_or(String::new(), |t| format!(" of {t}"));
            let hint = match &args.output {
                Some(p) => format!(
                    "; the finished results are kept in {}: re-run with --resume to continue",
                    p.display()
                ),
                None => String::new(),
            };
            Err(e.context(format!("stopped after {finished}{of} records{hint}")))
        }
    }
}

/// Where a resumed run starts, read from the results already written.
#[derive(Debug, Default)]
struct Resume {
    /// Records already done (the last result's index plus one).
    done: usize,
    /// A CSV header is already there.
    header: bool,
}

impl Resume {
    /// Reads `path`: drops a partly written last line, refuses a file of the
    /// other format, and takes the `record` index of the last complete line.
    fn read(path: &Path, json: bool) -> anyhow::Result<Resume> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Resume::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let partial = text.len() - keep;
        let text = String::from_utf8_lossy(&text[..keep]);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let Some(first) = lines.first() else {
            // Nothing complete: start afresh (a partial line is dropped below by truncation).
            if partial > 0 {
                std::fs::write(path, b"")
                    .with_context(|| format!("truncating {}", path.display()))?;
            }
            return Ok(Resume::default());
        };
        let is_json = first.starts_with('{');
        if !is_json && !first.starts_with("record,") {
            return Err(UsageError(format!(
                "cannot resume: {} does not hold results of cryptmed diagnose",
                path.display()
            ))
            .into());
        }
        if is_json != json {
            let (has, flag) = if is_json {
                ("JSON", "with --json")
            } else {
                ("CSV", "without --json")
            };
            return Err(UsageError(format!(
                "cannot resume: {} holds {has} results; resume {flag}, or write to another --output",
                path.display()
            ))
            .into());
        }
        // Checked, so the partly written last line can go.
        if partial > 0 {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(keep as u64))
                .with_context(|| format!("truncating {}", path.display()))?;
            eprintln!(
                "note: dropped a partly written last line of {} ({partial} bytes)",
                path.display()
            );
        }
        let results = if is_json { &lines[..] } else { &lines[1..] };
        let Some(last) = results.last() else {
            return Ok(Resume {
                done: 0,
                header: !is_json,
            });
        };
        let index = if is_json {
            serde_json::from_str::<serde_json::Value>(last)
                .ok()
                .and_then(|v| v["record"].as_u64())
        } else {
            last.split(',').next().and_then(|f| f.parse::<u64>().ok())
        };
        let index = index.ok_or_else(|| {
            UsageError(format!(
                "cannot resume: the last line of {} is not a result: {last:?}",
                path.display()
            ))
        })?;
        Ok(Resume {
            done: index as usize + 1,
            header: !is_json,
        })
    }
}

fn format_result(
    record: usize,
    p: &Prediction,
    names: Option<&[String]>,
    json: bool,
    header_written: &mut bool,
) -> String {
    let class = names.and_then(|n| n.get(p.label)).cloned();
    if json {
        let mut o = serde_json::json!({ "record": record, "label": p.label, "class_name": class });
        if let Some(pr) = &p.probabilities {
            o["probabilities"] = serde_json::json!(pr);
        }
        if let Some(l) = &p.logits {
            o["logits"] = serde_json::json!(l);
        }
        return format!("{o}\n");
    }
    let extra = p
        .probabilities
        .as_ref()
        .map(|v| ("p", v))
        .or(p.logits.as_ref().map(|v| ("logit", v)));
    let mut s = String::new();
    if !*header_written {
        s.push_str("record,label,class_name");
        if let Some((k, v)) = extra {
            for i in 0..v.len() {
                s.push_str(&format!(",{k}{i}"));
            }
        }
        s.push('\n');
        *header_written = true;
    }
    s.push_str(&format!(
        "{record},{},{}",
        p.label,
        class.unwrap_or_default()
    ));
    if let Some((_, v)) = extra {
        for x in v {
            s.push_str(&format!(",{x:.6}"));
        }
    }
    s.push('\n');
    s
}
