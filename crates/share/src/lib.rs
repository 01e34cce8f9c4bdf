//! Secret-shared values and how to open them.
//!
//! - [`Role`]: the two computing parties (provider = party 0, client = party 1).
//! - [`Seed`] and [`Prg`]: a seeded ChaCha12 generator with independent
//!   streams, the source of every share derived from a dealer seed.
//! - Shares themselves are plain `Vec<Elem>` (additive mod 2^64) and
//!   [`BitVec`](cryptmed_ring::bits::BitVec) (bit-sliced XOR, whose `Debug`
//!   prints the length only); no type here prints share values.
//! - [`open`]: exchanging shares over a [`Channel`](cryptmed_channel::Channel), counted as one round.

pub mod open;
mod prg;

pub use prg::{Prg, RngFailure, Seed, os_random};

/// One of the two computing parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Party 0: holds the model's weights.
    Provider,
    /// Party 1: holds the record.
    Client,
}

impl Role {
    /// 0 for the provider, 1 for the client.
    pub fn index(self) -> usize {
        match self {
            Role::Provider => 0,
            Role::Client => 1,
        }
    }

    /// The other party.
    pub fn peer(self) -> Role {
        match self {
            Role::Provider => Role::Client,
            Role::Client => Role::Provider,
        }
    }

    /// True for the party that adds public constants to its share (the provider).
    pub fn is_leader(self) -> bool {
        self == Role::Provider
    }
}
