//! `cryptmed dealer`: serve correlated randomness to provider/client pairs.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use super::{NetArgs, ServerArgs, seconds};

/// Arguments of `cryptmed dealer`.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "cryptmed dealer --listen <ADDR> --ca <FILE> --cert <FILE> --key <FILE> [OPTIONS]\n       \
                      cryptmed dealer --listen <ADDR> --insecure-plaintext [OPTIONS]",
    mut_args(super::server_required),
    after_help = "Examples:\n  cryptmed dealer --listen 0.0.0.0:7100 --cert certs/dealer.pem --key certs/dealer.key --ca certs/ca.pem\n  cryptmed dealer --listen 127.0.0.1:7100 --insecure-plaintext --pair-timeout 10\n\nThe dealer accepts providers and clients whose certificates (from `cryptmed certs`) name the role they join as.\nIt never sees records, weights or results. It must not collude with either party."
)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", help_heading = super::REQUIRED)]
    listen: String,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// Seconds to wait for the second party of a session after the first joined.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pair_timeout: f64,
}

/// Runs `cryptmed dealer` until killed.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let limits = cryptmed_service::Limits {
        pair_timeout: seconds("pair-timeout", args.pair_timeout)?,
        ..args.net.server_limits(&args.server)?
    };
    let security = args.net.server_security(&args.server)?;
    let audit = args.server.audit()?;
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    eprintln!("dealer listening on {}", listener.local_addr()?);
    tracing::info!(addr = %listener.local_addr()?, "dealer listening");
    let stop = Arc::new(AtomicBool::new(false));
    cryptmed_service::dealer::serve_audited(listener, security, limits, audit, stop)?;
    Ok(())
}
