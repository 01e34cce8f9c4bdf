//! `cryptmed diagnose`: the client, diagnosing records with a remote provider.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use cryptmed_engine::Prediction;
use cryptmed_service::client::{ClientSetup, SessionInfo, diagnose};

use super::{NetArgs, RevealArg};

/// Arguments of `cryptmed diagnose`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed diagnose --server provider.example:7200 --dealer dealer.example:7100 --ca certs/ca.pem --input records.csv\n  cryptmed diagnose ... --input records.csv --output results.jsonl --json --resume\n\nResults are written as they come: CSV (record,label,class_name,...) or, with --json, one JSON object per line."
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
    /// Continue from the first record not yet in --output.
    #[arg(long, requires = "output")]
    resume: bool,
    /// Records per batch (a batch shares its rounds).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Append each batch's engine report (bytes, rounds, times, per layer) as a JSON line to FILE.
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
    let security = args.net.security()?;
    let done = match (&args.output, args.resume) {
        (Some(p), true) if p.exists() => count_results(p, args.json)?,
        _ => 0,
    };
    let setup = ClientSetup {
        server: args.server.clone(),
        dealer: args.dealer.clone(),
        security,
        limits: args.net.limits(),
        batch: args.batch,
        reveal: args.reveal.map(Into::into),
    };
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
    let mut total = 0usize;
    let mut finished = done;
    let mut header_written = done > 0;
    let names: std::cell::RefCell<Option<Vec<String>>> = std::cell::RefCell::new(None);
    let bar: std::cell::RefCell<Option<indicatif::ProgressBar>> = std::cell::RefCell::new(None);
    let input = args.input.clone();
    let result = diagnose(
        &setup,
        |info: &SessionInfo| {
            *names.borrow_mut() = info.class_names.clone();
            let records = super::load_records(&input, info.network.input_len(), false)
                .map_err(|e| cryptmed_service::ServiceError::Config(format!("{e:#}")))?
                .records;
            total = records.len();
            if done > records.len() {
                return Err(cryptmed_service::ServiceError::Config(format!(
                    "the output already holds {done} results but the input has only {} records",
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
                let line = serde_json::to_string(report).unwrap_or_default() + "\n";
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .map_err(|e| {
                        cryptmed_service::ServiceError::Config(format!("writing the report: {e}"))
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
                out.write_all(line.as_bytes()).map_err(|e| {
                    cryptmed_service::ServiceError::Config(format!("writing results: {e}"))
                })?;
            }
            out.flush().map_err(|e| {
                cryptmed_service::ServiceError::Config(format!("writing results: {e}"))
            })?;
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
    match result {
        Ok(_) => {
            eprintln!(
                "diagnosed {} records ({} in this run)",
                finished,
                finished - done
            );
            Ok(())
        }
        Err(e) => {
            let hint = if args.output.is_some() {
                "; the finished results are kept: re-run with --resume to continue"
            } else {
                ""
            };
            Err(anyhow::Error::new(e)
                .context(format!("stopped after {finished} of {total} records{hint}")))
        }
    }
}

fn count_results(path: &PathBuf, json: bool) -> anyhow::Result<usize> {
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let lines = std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .count();
    Ok(if json { lines } else { lines.saturating_sub(1) })
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
