//! `cryptmed dealer`: serve correlated randomness to provider/client pairs.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use super::NetArgs;

/// Arguments of `cryptmed dealer`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  cryptmed dealer --listen 0.0.0.0:7100 --cert certs/dealer.pem --key certs/dealer.key --ca certs/ca.pem\n\nThe dealer never sees records, weights or results. It must not collude with either party."
)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    #[command(flatten)]
    net: NetArgs,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 64)]
    max_sessions: usize,
}

/// Runs `cryptmed dealer` until killed.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let security = args.net.security()?;
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    eprintln!("dealer listening on {}", listener.local_addr()?);
    let limits = cryptmed_service::Limits {
        max_sessions: args.max_sessions,
        ..args.net.limits()
    };
    cryptmed_service::dealer::serve(listener, security, limits, Arc::new(AtomicBool::new(false)))?;
    Ok(())
}
