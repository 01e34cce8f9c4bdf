//! `cryptmed certs`: a CA and certificates for the three roles.

use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `cryptmed certs`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed certs --out certs\n  cryptmed certs --out certs --name dealer.hospital.example --name provider.example --name 10.0.0.5\n\nWrites ca.pem, ca.key and dealer/provider/client .pem and .key. Keep ca.key offline."
)]
pub(crate) struct Args {
    /// Directory to write the files to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Host names or IP addresses the certificates are valid for (repeatable).
    #[arg(long = "name", value_name = "HOST", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    names: Vec<String>,
}

/// Runs `cryptmed certs`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let set = cryptmed_service::tls::generate_certs(&args.names, false)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let p = args.out.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("ca.pem", &set.ca_pem)?;
    write("ca.key", &set.ca_key_pem)?;
    for (role, cert, key) in &set.roles {
        write(&format!("{role}.pem"), cert)?;
        write(&format!("{role}.key"), key)?;
    }
    println!(
        "wrote ca.pem, ca.key, dealer.pem/.key, provider.pem/.key, client.pem/.key to {} (valid for {})",
        args.out.display(),
        args.names.join(", ")
    );
    Ok(())
}
