//! `cryptmed inspect` (being written).

/// Arguments of `cryptmed inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed inspect`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed inspect` is not available in this build yet")
}
