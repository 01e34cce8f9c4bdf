//! `cryptmed diagnose`: the client, diagnosing records with a remote provider.
//!
//! Order of work: the records are read and checked as far as they can be
//! without the model (format, every number, the header against
//! `--ignore-column`) and the output file's rules are applied **before**
//! connecting; once the provider's public description arrives, the columns
//! are matched by name, plausibility is checked, images are prepared and a
//! resumed file is checked to belong to this run, all **before** the client
//! accepts the session. The output is opened only when results arrive.

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use cryptmed_engine::{Prediction, Reveal};
use cryptmed_input::Source;
use cryptmed_input::results::{Columns, Existing, Mode, Outcome, ResultsError, Run, Writer};
use cryptmed_service::ServiceError;
use cryptmed_service::client::{
    BatchReport, ClientSetup, SessionInfo, diagnose_with_progress, retry_busy,
};

use super::records::{Fitted, RecordArgs};
use super::{NetArgs, RevealArg, UsageError};

/// Arguments of `cryptmed diagnose`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed diagnose --server provider.example:7200 --dealer dealer.example:7100 --ca certs/ca.pem \\\n      --cert certs/client.pem --key certs/client.key --input records.csv --output results.csv\n  cryptmed diagnose ... --input records.csv --ignore-column patient_id --output results.jsonl --json --resume\n\nCSV columns are matched to the model's by header name (any order); skip others with --ignore-column.\nResults are written as they come: CSV (record,label,class_name, then p_<class> or logit_<class>) or, with --json,\none JSON object per line, after a first line naming the run (records, model, output policy).\nAn existing --output is never overwritten: --resume continues it (same run only), --force replaces it."
)]
pub(crate) struct Args {
    /// The provider (`host:port`).
    #[arg(long, value_name = "ADDR", value_parser = super::host_port)]
    server: String,
    /// The dealer this client trusts (`host:port`).
    #[arg(long, value_name = "ADDR", value_parser = super::host_port)]
    dealer: String,
    /// Records: CSV (header naming the model's columns), NPY, IDX, PNG, JPEG, DICOM, or a folder of images.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    #[command(flatten)]
    records: RecordArgs,
    /// Where to write results (default: standard output).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// One JSON object per record per line instead of CSV.
    #[arg(long)]
    json: bool,
    /// Continue the results in --output (same records, model and policy; a partly written last line is dropped).
    #[arg(long, requires = "output", conflicts_with = "force")]
    resume: bool,
    /// Replace the results in --output (once the first new results arrive).
    #[arg(long, requires = "output")]
    force: bool,
    /// Records per batch (a batch shares its rounds).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Append each batch's report (engine report and dealer-link bytes) as a JSON line to FILE.
    #[arg(long, hide = true, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Refuse the session unless the provider reveals exactly this.
    #[arg(long, value_enum)]
    reveal: Option<RevealArg>,
    /// Seconds to keep trying, with jittered back-off, while the provider or the dealer is busy (0: once).
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    retry_for: f64,
    #[command(flatten)]
    net: NetArgs,
}

/// How the output is to be opened, by the rules: an existing non-empty
/// file needs `--resume` or `--force`.
fn output_mode(args: &Args) -> anyhow::Result<Mode> {
    let Some(path) = &args.output else {
        return Ok(Mode::New);
    };
    if args.force {
        return Ok(Mode::Replace);
    }
    let usage = |e: ResultsError| match e {
        ResultsError::Usage(m) => {
            anyhow::Error::new(UsageError(format!("cannot write results: {m}")))
        }
        e => anyhow::Error::new(e),
    };
    match (Existing::read(path, args.json).map_err(usage)?, args.resume) {
        (None, _) => Ok(Mode::New),
        (Some(e), true) => Ok(Mode::Continue(e)),
        (Some(_), false) => Err(UsageError(format!(
            "{} already holds results: --resume continues them (the same records, model and policy), \
             --force replaces them",
            path.display()
        ))
        .into()),
    }
}

/// The run a results file belongs to, what it may reveal, and its class names.
type Accepted = (Run, Reveal, Option<Vec<String>>);

/// The client's state across the session's two callbacks.
struct Client<'a> {
    args: &'a Args,
    source: Source,
    /// Records already in a resumed output.
    done: usize,
    mode: RefCell<Option<Mode>>,
    fitted: RefCell<Option<Fitted>>,
    run: RefCell<Option<Accepted>>,
    writer: RefCell<Option<Writer>>,
    bar: RefCell<Option<indicatif::ProgressBar>>,
    finished: Cell<usize>,
}

impl Client<'_> {
    /// Once the provider's public description is known: fits the records
    /// (columns, plausibility, preprocessing), checks a resumed output
    /// belongs to this run, and returns the records to diagnose.
    fn accept(&self, info: &SessionInfo) -> Result<Vec<Vec<f64>>, ServiceError> {
        let input = |e: String| ServiceError::Input(e);
        let fitted = self
            .args
            .records
            .fit(&self.source, &info.network)
            .map_err(|e| input(e.to_string()))?;
        let run = Run {
            input: fitted.records.fingerprint(),
            model: info.fingerprint.clone(),
            reveal: info.reveal.name().into(),
            allow_implausible: self.args.records.allow_implausible,
        };
        let n = fitted.records.records.len();
        if let (Some(Mode::Continue(e)), Some(path)) =
            (self.mode.borrow().as_ref(), &self.args.output)
        {
            e.check(path, &run, n).map_err(|e| input(e.to_string()))?;
        }
        if !fitted.implausible.is_empty() {
            eprintln!(
                "note: {} values outside their plausible range are diagnosed (--allow-implausible); \
                 the `implausible` field of their results names the columns",
                fitted.implausible.len()
            );
        }
        let todo = fitted.records.records[self.done..].to_vec();
        if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(todo.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} records {elapsed} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            *self.bar.borrow_mut() = Some(b);
        }
        *self.run.borrow_mut() = Some((run, info.reveal, info.network.class_names.clone()));
        *self.fitted.borrow_mut() = Some(fitted);
        Ok(todo)
    }

    /// Writes a batch's results (opening the output at the first).
    fn batch(
        &self,
        first: usize,
        preds: &[Prediction],
        report: &BatchReport,
    ) -> Result<(), ServiceError> {
        if let Some(path) = &self.args.report {
            write_report(path, report)?;
        }
        let values = |p: &Prediction| {
            p.probabilities
                .clone()
                .or_else(|| p.logits.clone())
                .unwrap_or_default()
        };
        let mut writer = self.writer.borrow_mut();
        let run = self.run.borrow();
        let Some((run, reveal, classes)) = run.as_ref() else {
            return Ok(());
        };
        let w = writer.get_or_insert_with(|| {
            let kind = match reveal {
                Reveal::Label => None,
                r => Some(r.name()),
            };
            let outputs = preds.first().map_or(0, |p| values(p).len());
            let columns = Columns::new(
                kind,
                outputs,
                classes.as_deref(),
                self.args.records.allow_implausible,
            );
            let mode = self.mode.borrow_mut().take().unwrap_or(Mode::New);
            Writer::new(
                self.args.output.clone(),
                mode,
                self.args.json,
                run.clone(),
                columns,
            )
        });
        let fitted = self.fitted.borrow();
        let vals: Vec<Vec<f64>> = preds.iter().map(values).collect();
        let marks: Vec<Vec<String>> = (0..preds.len())
            .map(|k| {
                fitted
                    .as_ref()
                    .map_or(Vec::new(), |f| f.implausible_in(self.done + first + k))
            })
            .collect();
        let outcomes: Vec<Outcome<'_>> = preds
            .iter()
            .enumerate()
            .map(|(k, p)| Outcome {
                record: self.done + first + k,
                label: p.label,
                class_name: classes
                    .as_ref()
                    .and_then(|c| c.get(p.label))
                    .map(String::as_str),
                values: &vals[k],
                implausible: &marks[k],
            })
            .collect();
        w.write(&outcomes).map_err(|e| match e {
            ResultsError::Io { what, file, cause } => ServiceError::Io {
                what: format!("{what} {file}"),
                cause,
            },
            e => ServiceError::Input(e.to_string()),
        })?;
        self.finished.set(self.finished.get() + preds.len());
        if let Some(b) = self.bar.borrow().as_ref() {
            b.inc(preds.len() as u64);
        }
        Ok(())
    }
}

/// Appends a batch's report, with this process's peak memory so far.
fn write_report(path: &std::path::Path, report: &BatchReport) -> Result<(), ServiceError> {
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
        })
}

/// Runs `cryptmed diagnose`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let limits = args.net.limits()?;
    let security = args.net.security()?;
    // Everything that needs no provider, before any connection.
    let source = args.records.read(&args.input, false)?;
    let mode = output_mode(&args)?;
    let done = match &mode {
        Mode::Continue(e) => e.done,
        _ => 0,
    };
    let setup = ClientSetup {
        server: args.server.clone(),
        dealer: args.dealer.clone(),
        security,
        limits,
        batch: args.batch,
        reveal: args.reveal.map(Into::into),
    };
    let client = Client {
        args: &args,
        source,
        done,
        mode: RefCell::new(Some(mode)),
        fitted: RefCell::default(),
        run: RefCell::default(),
        writer: RefCell::default(),
        bar: RefCell::default(),
        finished: Cell::new(0),
    };
    let retry_for = match args.retry_for {
        0.0 => std::time::Duration::ZERO,
        s => super::seconds("retry-for", s)?,
    };
    let result = retry_busy(
        retry_for,
        |e, wait| eprintln!("{e}; trying again in {:.1} s", wait.as_secs_f64()),
        || {
            diagnose_with_progress(
                &setup,
                super::layer_progress(),
                |info| client.accept(info),
                |first, preds, report| client.batch(first, preds, report),
            )
        },
    );
    if matches!(&result, Err(e) if e.is_busy()) {
        eprintln!(
            "giving up: still busy after --retry-for {} s",
            args.retry_for
        );
    }
    if let Some(b) = client.bar.borrow().as_ref() {
        b.finish_and_clear();
    }
    finish(&args, &client, result)
}

/// The outcome in words: a refused record named by file, line and column;
/// after a failure, how many records are done and how to continue.
fn finish(
    args: &Args,
    client: &Client<'_>,
    result: Result<SessionInfo, ServiceError>,
) -> anyhow::Result<()> {
    let fitted = client.fitted.borrow();
    let result = result.map_err(|e| match (&e, fitted.as_ref()) {
        // A record the engine refused (against the provider's per-column
        // limits, which arrive with the session): its file, line and column.
        (ServiceError::Engine(engine), Some(f)) => super::record_error(
            &args.input.display().to_string(),
            &f.records,
            client.done,
            engine,
        )
        .map_or_else(|| anyhow::Error::new(e), anyhow::Error::new),
        _ => anyhow::Error::new(e),
    });
    let (done, finished) = (client.done, client.finished.get());
    match result {
        Ok(_) => {
            eprintln!(
                "diagnosed {} records ({finished} in this run)",
                done + finished
            );
            Ok(())
        }
        // Nothing finished: the error itself says what failed.
        Err(e) if finished == 0 => Err(e),
        Err(e) => {
            let of = fitted.as_ref().map_or(String::new(), |f| {
                format!(" of {}", f.records.records.len())
            });
            let hint = match &args.output {
                Some(p) => format!(
                    "; the finished results are kept in {}: re-run with --resume to continue",
                    p.display()
                ),
                None => String::new(),
            };
            Err(e.context(format!(
                "stopped after {}{of} records{hint}",
                done + finished
            )))
        }
    }
}
