//! `cryptmed dealer` (being written).

/// Arguments of `cryptmed dealer`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed dealer`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed dealer` is not available in this build yet")
}
