//! `cryptmed serve`: the provider, serving a model to clients.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use cryptmed_service::provider::{Backend, ProviderSetup};

use super::{NetArgs, RevealArg, ServerArgs};

/// Arguments of `cryptmed serve`.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "cryptmed serve --model <FILE.onnx> --listen <ADDR> --dealer <ADDR> --ca <FILE> --cert <FILE> --key <FILE> [OPTIONS]\n       \
                      cryptmed serve --model <FILE.onnx> --listen <ADDR> --dealer <ADDR> --insecure-plaintext [OPTIONS]",
    mut_args(super::server_required),
    after_help = "Examples:\n  cryptmed serve --model models/breast-cancer-relu.onnx --listen 0.0.0.0:7200 --dealer dealer.example:7100 \\\n      --cert certs/provider.pem --key certs/provider.key --ca certs/ca.pem --reveal label\n  cryptmed serve ... --timeout 30 --max-sessions 32 --handshake-timeout 5\n\nThe provider connects to its dealer for every session; clients must trust the same dealer."
)]
pub(crate) struct Args {
    /// The model (ONNX, as PyTorch exports it).
    #[arg(long, value_name = "FILE.onnx", required_unless_present = "zoo", help_heading = super::REQUIRED)]
    model: Option<PathBuf>,
    /// Serve a benchmark network with seeded random weights instead (for `cryptmed bench`).
    #[arg(long, hide = true, conflicts_with = "model")]
    zoo: Option<String>,
    /// Address to listen on for clients.
    #[arg(long, value_name = "ADDR", help_heading = super::REQUIRED)]
    listen: String,
    /// The dealer this provider trusts (`host:port`).
    #[arg(long, value_name = "ADDR", value_parser = super::host_port, help_heading = super::REQUIRED)]
    dealer: String,
    #[command(flatten)]
    schema: super::records::SchemaArgs,
    /// What clients may learn.
    #[arg(long, value_enum, default_value_t = RevealArg::Label)]
    reveal: RevealArg,
    #[command(flatten)]
    smooth: super::SmoothArgs,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `cryptmed serve` until killed.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let (mut net, what) = match (&args.model, &args.zoo) {
        (Some(p), _) => (super::load_network(p)?, p.display().to_string()),
        (None, Some(z)) => (
            cryptmed_model::zoo::build(z, 1)
                .with_context(|| format!("unknown benchmark network {z}"))?,
            format!("{z} (random weights)"),
        ),
        (None, None) => anyhow::bail!("give --model"),
    };
    args.schema.apply(&mut net)?;
    // `auto` is decided per client, on its measured round trip.
    let (smooth, backend) = match args.smooth.comparison {
        super::ComparisonArg::Auto => (
            super::SmoothArgs {
                comparison: super::ComparisonArg::Ppa,
                ..args.smooth
            },
            Backend::PerSession {
                bandwidth: args.smooth.link.link()?.bandwidth,
            },
        ),
        _ => (args.smooth, Backend::Fixed),
    };
    let model = super::compile(net.clone(), args.reveal.into(), &smooth)?;
    let limits = args.net.server_limits(&args.server)?;
    let security = args.net.server_security(&args.server)?;
    let audit = args.server.audit()?;
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "provider serving {} ({} parameters, {}, reveal {:?}) on {}",
        what,
        net.param_count(),
        match &net.schema {
            Some(s) => format!("{} named columns", s.features.len()),
            None => "columns not named".to_string(),
        },
        args.reveal,
        listener.local_addr()?
    );
    tracing::info!(addr = %listener.local_addr()?, dealer = %args.dealer, "provider listening");
    let setup = Arc::new(ProviderSetup {
        model,
        public: net.public(),
        dealer: args.dealer,
        security,
        limits,
        backend,
    });
    let stop = Arc::new(AtomicBool::new(false));
    cryptmed_service::provider::serve_audited(listener, setup, audit, stop)?;
    Ok(())
}
