//! `cryptmed demo` (being written).

/// Arguments of `cryptmed demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `cryptmed demo`.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cryptmed demo` is not available in this build yet")
}
