//! The per-party context every online protocol runs in.

use cryptmed_channel::{Channel, ChannelError};
use cryptmed_share::Role;

/// Why an online protocol step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The link to the peer failed (closed, timed out, transport error).
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// This party's role and its channel to the peer, passed explicitly (no globals).
pub struct Ctx<'a> {
    /// Who we are.
    pub role: Role,
    /// The link to the other party.
    pub ch: &'a mut dyn Channel,
}

impl<'a> Ctx<'a> {
    /// A context for `role` over `ch`.
    pub fn new(role: Role, ch: &'a mut dyn Channel) -> Self {
        Self { role, ch }
    }

    /// True for the party that adds public constants (the provider).
    pub fn lead(&self) -> bool {
        self.role.is_leader()
    }
}
