//! `cryptmed certs`: a CA and one certificate per role.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cryptmed_service::tls::{Role, RoleNames, generate_certs};

/// Arguments of `cryptmed certs`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  cryptmed certs --out certs\n  cryptmed certs --out certs --dealer-name dealer.example --provider-name provider.example --client-name clinic.example\n  cryptmed certs --out certs --name localhost --name 127.0.0.1 --provider-name 10.0.0.5\n\nWrites ca.pem, ca.key and dealer/provider/client .pem and .key (keys readable by the owner only).\nEach certificate names its role (urn:cryptmed:role:ROLE) and is valid only for its role's host names,\nso a certificate cannot be used in another role. Keep ca.key offline."
)]
pub(crate) struct Args {
    /// Directory to write the files to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Host names or IP addresses for every role's certificate (repeatable; for one machine).
    #[arg(long = "name", value_name = "HOST")]
    names: Vec<String>,
    /// The dealer's host names or IP addresses (repeatable).
    #[arg(long = "dealer-name", value_name = "HOST")]
    dealer: Vec<String>,
    /// The provider's host names or IP addresses (repeatable).
    #[arg(long = "provider-name", value_name = "HOST")]
    provider: Vec<String>,
    /// The client's host names or IP addresses (repeatable).
    #[arg(long = "client-name", value_name = "HOST")]
    client: Vec<String>,
}

/// Runs `cryptmed certs`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    // A role's names: its own and the shared ones; with none at all, this machine.
    let names_of = |own: &[String]| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for n in own.iter().chain(&args.names) {
            if !v.contains(n) {
                v.push(n.clone());
            }
        }
        if v.is_empty() {
            v = vec!["localhost".into(), "127.0.0.1".into()];
        }
        v
    };
    let names = RoleNames {
        dealer: names_of(&args.dealer),
        provider: names_of(&args.provider),
        client: names_of(&args.client),
    };
    let set = generate_certs(&names, false)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write(&args.out.join("ca.pem"), &set.ca_pem, false)?;
    write(&args.out.join("ca.key"), &set.ca_key_pem, true)?;
    for (role, cert, key) in &set.roles {
        write(&args.out.join(format!("{role}.pem")), cert, false)?;
        write(&args.out.join(format!("{role}.key")), key, true)?;
    }
    println!(
        "wrote ca.pem, ca.key, dealer.pem/.key, provider.pem/.key, client.pem/.key to {}",
        args.out.display()
    );
    for role in Role::ALL {
        println!("  {role}: valid for {}", names.of(role).join(", "));
    }
    Ok(())
}

/// Writes `text` to `path`; a secret is readable by its owner only (mode 0600 on Unix).
fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(if secret { 0o600 } else { 0o644 });
        // An existing file keeps its mode on open: set it explicitly.
        if secret && path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    let _ = secret;
    o.open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}
