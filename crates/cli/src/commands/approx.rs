//! `cryptmed approx` (being written).

/// Arguments of `cryptmed approx`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed approx`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed approx` is not available in this build yet")
}
