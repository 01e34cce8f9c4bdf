//! `cryptmed`: private medical diagnosis by secret-shared neural-network inference.
//!
//! One binary for the three roles (dealer, provider, client) and the tools
//! around them. Each subcommand lives in its own module under `commands/`.

mod commands;

use clap::{Parser, Subcommand};

/// Private medical diagnosis: run a provider's neural network on a clinic's
/// record without either side seeing the other's secret.
#[derive(Debug, Parser)]
#[command(name = "cryptmed", version, about, long_about = None)]
struct Cli {
    /// More log output (-v info, -vv debug); logs never contain secrets.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a complete secure diagnosis locally (dealer, provider and client over TLS on loopback).
    Demo(commands::demo::Args),
    /// Run the dealer: serves correlated randomness to provider/client pairs.
    Dealer(commands::dealer::Args),
    /// Run the provider: serves a model to clients.
    Serve(commands::serve::Args),
    /// Run the client: diagnose records with a remote provider.
    Diagnose(commands::diagnose::Args),
    /// Make a CA and certificates for the three roles.
    Certs(commands::certs::Args),
    /// Measure bytes, rounds and time of a benchmark network or a single operation.
    Bench(commands::bench::Args),
    /// Show how the engine will run an ONNX model, with predicted costs.
    Inspect(commands::inspect::Args),
    /// Secure vs plaintext accuracy of a model over a labelled test set.
    Eval(commands::eval::Args),
    /// Export or check the smooth-function approximations.
    Approx(commands::approx::Args),
}

/// Output piped into a reader that stops early (`cryptmed inspect M | head`)
/// ends the process quietly, with the status a shell reports for a process
/// killed by SIGPIPE (128 + 13), as Unix tools do; `print!` would otherwise
/// panic. SIGPIPE itself stays ignored, so a peer closing a TLS link is an
/// error the session reports, never the death of a server.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("os error 32") {
            std::process::exit(141);
        }
        default(info)
    }));
}

fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    commands::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Dealer(a) => commands::dealer::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Diagnose(a) => commands::diagnose::run(a),
        Command::Certs(a) => commands::certs::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Approx(a) => commands::approx::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", commands::render(&e));
            commands::exit_code(&e)
        }
    }
}
