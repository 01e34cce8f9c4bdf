//! `cryptmed bench` (being written).

/// Arguments of `cryptmed bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed bench`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed bench` is not available in this build yet")
}
