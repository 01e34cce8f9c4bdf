//! `cryptmed serve` (being written).

/// Arguments of `cryptmed serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed serve`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed serve` is not available in this build yet")
}
