//! `cryptmed diagnose` (being written).

/// Arguments of `cryptmed diagnose`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed diagnose`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed diagnose` is not available in this build yet")
}
