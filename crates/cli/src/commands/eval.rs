//! `cryptmed eval` (being written).

/// Arguments of `cryptmed eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed eval`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed eval` is not available in this build yet")
}
