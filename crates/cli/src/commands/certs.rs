//! `cryptmed certs` (being written).

/// Arguments of `cryptmed certs`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed certs`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed certs` is not available in this build yet")
}
