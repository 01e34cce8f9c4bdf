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

fn main() -> std::process::ExitCode {
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
