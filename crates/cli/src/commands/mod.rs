//! One module per subcommand; shared helpers for models, TLS flags, logging
//! and exit codes.

pub(crate) mod approx;
pub(crate) mod bench;
pub(crate) mod certs;
pub(crate) mod dealer;
pub(crate) mod demo;
pub(crate) mod diagnose;
pub(crate) mod eval;
pub(crate) mod inspect;
pub(crate) mod serve;
pub(crate) mod suite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cryptmed_engine::{EngineConfig, EngineError, Model, Reveal};
use cryptmed_model::Network;
use cryptmed_service::{Limits, Security, ServiceError, Timeouts};

/// Sets up `tracing` on standard error; `RUST_LOG` overrides the verbosity.
pub(crate) fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Exit codes (documented in the README):
/// 0 success; 1 other failure; 2 usage; 3 bad input or model (unreadable or
/// unsupported model, bad record, bad certificate files); 4 network or peer
/// failure (unreachable, TLS, disconnect, timeout, malformed frames, refused);
/// 5 the parties disagree (protocol version, architecture digest, output
/// policy, or dealer).
pub(crate) fn exit_code(e: &anyhow::Error) -> std::process::ExitCode {
    let code = e
        .chain()
        .find_map(|c| {
            if let Some(s) = c.downcast_ref::<ServiceError>() {
                return Some(match s {
                    _ if s.is_mismatch() => 5,
                    ServiceError::Config(_) => 3,
                    ServiceError::Engine(
                        EngineError::Unsupported(_) | EngineError::Encoding(_),
                    ) => 3,
                    ServiceError::Engine(_) => 4,
                    _ => 4,
                });
            }
            if c.downcast_ref::<cryptmed_model::onnx::ImportError>()
                .is_some()
                || c.downcast_ref::<cryptmed_model::input::InputError>()
                    .is_some()
            {
                return Some(3);
            }
            match c.downcast_ref::<EngineError>() {
                Some(EngineError::Unsupported(_) | EngineError::Encoding(_)) => Some(3),
                Some(_) => Some(4),
                None => None,
            }
        })
        .unwrap_or(1);
    std::process::ExitCode::from(code)
}

/// `--reveal` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RevealArg {
    /// The class index only (secure argmax).
    Label,
    /// The softmax vector.
    Probabilities,
    /// The raw outputs.
    Logits,
}

impl From<RevealArg> for Reveal {
    fn from(r: RevealArg) -> Self {
        match r {
            RevealArg::Label => Reveal::Label,
            RevealArg::Probabilities => Reveal::Probabilities,
            RevealArg::Logits => Reveal::Logits,
        }
    }
}

/// TLS and timeout flags shared by the three roles.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NetArgs {
    /// CA certificate (PEM) that signed the other roles' certificates.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "insecure_plaintext"
    )]
    pub(crate) ca: Option<PathBuf>,
    /// This role's certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// This role's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// Servers: refuse peers without a certificate signed by the CA.
    #[arg(long)]
    pub(crate) require_client_cert: bool,
    /// Use plain TCP instead of TLS. For local testing only: everything on the wire is readable.
    #[arg(long)]
    pub(crate) insecure_plaintext: bool,
    /// Seconds before a silent peer is an error.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
}

impl NetArgs {
    pub(crate) fn security(&self) -> anyhow::Result<Security> {
        if self.insecure_plaintext {
            tracing::warn!(
                "INSECURE: --insecure-plaintext: this link is plain TCP, anyone on the network can read it"
            );
            eprintln!(
                "warning: --insecure-plaintext: plain TCP, no encryption and no authentication (testing only)"
            );
            return Ok(Security::Plaintext);
        }
        let ca = self
            .ca
            .as_deref()
            .context("--ca is required (or --insecure-plaintext for local tests)")?;
        Ok(Security::tls_files(
            ca,
            self.cert.as_deref(),
            self.key.as_deref(),
            self.require_client_cert,
        )?)
    }

    pub(crate) fn limits(&self) -> Limits {
        let io = Duration::from_secs(self.timeout.max(1));
        Limits {
            timeouts: Timeouts {
                connect: io.min(Duration::from_secs(10)),
                io,
            },
            ..Limits::default()
        }
    }
}

/// Imports an ONNX model.
pub(crate) fn load_network(path: &Path) -> anyhow::Result<Network> {
    Ok(cryptmed_model::onnx::load(path)?)
}

/// Compiles a network for the engine.
pub(crate) fn compile(
    net: Network,
    reveal: Reveal,
    precision: cryptmed_approx::Precision,
) -> anyhow::Result<Model> {
    Ok(Model::compile(
        net,
        EngineConfig {
            reveal,
            precision,
            ..EngineConfig::default()
        },
    )?)
}

/// Loads the records of `path` for a model with `input_len` values.
pub(crate) fn load_records(
    path: &Path,
    input_len: usize,
    labelled: bool,
) -> anyhow::Result<cryptmed_model::input::Records> {
    let limit = cryptmed_ring::FixedPoint::default().limit().min(1e9);
    Ok(cryptmed_model::input::load(
        path, input_len, labelled, limit,
    )?)
}

/// Index of the first largest value.
pub(crate) fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |b, (i, x)| if *x > v[b] { i } else { b })
}
