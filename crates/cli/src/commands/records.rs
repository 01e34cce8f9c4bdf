//! The flags and steps shared by the commands that read a clinic's records
//! (`diagnose`, `demo`, `eval`): how a CSV's columns are read, whether
//! implausible values are let through, and the model's schema file.

use std::path::{Path, PathBuf};

use cryptmed_input::{
    CsvOptions, Implausible, InputError, ReadOptions, Records, Source, Table, Target,
};
use cryptmed_model::{Network, SchemaFile};

/// How the client's records are read and checked.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RecordArgs {
    /// A CSV column to skip (a patient id, a label), named as in the header; repeatable.
    #[arg(long = "ignore-column", value_name = "NAME")]
    pub(crate) ignore: Vec<String>,
    /// The CSV has no header: its columns are the model's, in the model's order (your responsibility).
    #[arg(long)]
    pub(crate) no_header: bool,
    /// Diagnose records with values outside their column's plausible range (their results say so).
    #[arg(long)]
    pub(crate) allow_implausible: bool,
}

/// The largest magnitude a record value may have: the fixed-point range, at most `1e9`.
fn limit() -> f64 {
    cryptmed_ring::FixedPoint::default().limit().min(1e9)
}

/// Records fitted to a model, with the values let through as implausible.
#[derive(Debug, Clone)]
pub(crate) struct Fitted {
    /// The records, in the model's column order.
    pub(crate) records: Records,
    /// Values outside their plausible range (only with `--allow-implausible`).
    pub(crate) implausible: Vec<Implausible>,
}

impl Fitted {
    /// The names of record `k`'s implausible columns.
    pub(crate) fn implausible_in(&self, k: usize) -> Vec<String> {
        self.implausible
            .iter()
            .filter(|i| i.record == k)
            .map(|i| i.name.clone())
            .collect()
    }
}

impl RecordArgs {
    /// Reads `path` as far as it can be read without the model (see
    /// [`Source::read`]); `labelled` reads a CSV's label column apart.
    pub(crate) fn read(&self, path: &Path, labelled: bool) -> Result<Source, InputError> {
        let opts = ReadOptions {
            csv: self.csv(labelled),
            limit: limit(),
        };
        Source::read(path, &opts)
    }

    /// How a CSV is read with these flags.
    fn csv(&self, labelled: bool) -> CsvOptions {
        CsvOptions {
            ignore: self.ignore.clone(),
            no_header: self.no_header,
            labelled,
        }
    }

    /// Fits a source to `net`'s public description (shape, named columns,
    /// image preprocessing) and checks plausibility.
    pub(crate) fn fit(&self, source: &Source, net: &Network) -> Result<Fitted, InputError> {
        self.plausible(source.file(), source.records(&Target::of(net))?, net)
    }

    /// Reads `path` and fits it to `net` in one go ([`RecordArgs::read`],
    /// then [`RecordArgs::fit`]).
    pub(crate) fn load(
        &self,
        path: &Path,
        net: &Network,
        labelled: bool,
    ) -> Result<Fitted, InputError> {
        self.fit(&self.read(path, labelled)?, net)
    }

    /// [`RecordArgs::load`] of only the first `first` records: the ones
    /// after them are neither checked nor kept (`eval --limit`).
    pub(crate) fn load_first(
        &self,
        path: &Path,
        net: &Network,
        labelled: bool,
        first: usize,
    ) -> Result<Fitted, InputError> {
        let source = self.read(path, labelled)?;
        let mut records = source.records(&Target::of(net))?;
        records.keep_first(first);
        self.plausible(source.file(), records, net)
    }

    /// CSV text (`file` names it in messages) fitted to `net`, as
    /// [`RecordArgs::load`] fits a CSV file.
    pub(crate) fn load_csv(
        &self,
        file: &str,
        bytes: &[u8],
        net: &Network,
    ) -> Result<Fitted, InputError> {
        let table = Table::parse(file, bytes, &self.csv(false), limit())?;
        self.plausible(
            file,
            table.records(net.input_len(), net.schema.as_ref())?,
            net,
        )
    }

    /// Checks `records` of `file` against `net`'s plausible ranges.
    pub(crate) fn plausible(
        &self,
        file: &str,
        records: Records,
        net: &Network,
    ) -> Result<Fitted, InputError> {
        let implausible = cryptmed_input::check_plausible(
            file,
            &records,
            net.schema.as_ref(),
            self.allow_implausible,
        )?;
        Ok(Fitted {
            records,
            implausible,
        })
    }
}

/// `--schema FILE.json`: the model's columns and preprocessing given beside it.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct SchemaArgs {
    /// JSON with the model's input columns (`features`: name, unit, range) and/or `preprocessing`; replaces the model's own.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) schema: Option<PathBuf>,
}

impl SchemaArgs {
    /// Puts the schema file's columns and preprocessing into `net`, and
    /// checks that they fit it.
    pub(crate) fn apply(&self, net: &mut Network) -> Result<(), InputError> {
        let Some(path) = &self.schema else {
            return Ok(());
        };
        let file = path.display().to_string();
        let bad = |reason: String| InputError::Format {
            file: file.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| InputError::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        SchemaFile::from_json(&text)
            .map_err(|e| bad(format!("not a schema file: {e}")))?
            .apply(net);
        net.validate()
            .map_err(|e| bad(format!("does not fit the model: {e}")))
    }
}
