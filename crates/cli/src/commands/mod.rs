//! One module per subcommand; shared helpers for logging and exit codes.

pub(crate) mod approx;
pub(crate) mod bench;
pub(crate) mod certs;
pub(crate) mod dealer;
pub(crate) mod demo;
pub(crate) mod diagnose;
pub(crate) mod eval;
pub(crate) mod inspect;
pub(crate) mod serve;

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

/// Maps an error to the process exit code documented in the README
/// (1: any failure; more specific codes are added by the service layer).
pub(crate) fn exit_code(_e: &anyhow::Error) -> std::process::ExitCode {
    std::process::ExitCode::from(1)
}
