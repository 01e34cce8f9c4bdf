//! Secret-shared values and how to open them.
//!
//! - [`Role`]: the two computing parties (provider = party 0, client = party 1).
//! - [`Seed`] and [`Prg`]: a seeded ChaCha12 generator with independent
//!   streams, the source of every share derived from a dealer seed.
//! - [`ArithShare`] (additive mod 2^64) and [`BoolShare`] (bit-sliced XOR):
//!   newtypes whose `Debug` prints shape only, never values.
//! - [`open`]: exchanging shares over a [`Channel`], counted as one round.

pub mod open;
mod prg;

use cryptmed_ring::Elem;
use cryptmed_ring::bits::BitVec;

pub use prg::{Prg, Seed};

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

/// This party's additive shares of a vector of ring elements.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ArithShare(pub Vec<Elem>);

impl std::fmt::Debug for ArithShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArithShare(len={})", self.0.len())
    }
}

/// This party's XOR shares of a vector of bits, packed 64 to a word.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct BoolShare(pub BitVec);

impl std::fmt::Debug for BoolShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BoolShare(len={})", self.0.len())
    }
}

/// Splits clear values into two additive shares with `prg` (tests and the dealer).
pub fn share_arith(values: &[Elem], prg: &mut Prg) -> (ArithShare, ArithShare) {
    let s0 = prg.elems(values.len());
    let s1 = cryptmed_ring::sub(values, &s0);
    (ArithShare(s0), ArithShare(s1))
}

/// Splits clear bits into two XOR shares with `prg` (tests and the dealer).
pub fn share_bits(values: &BitVec, prg: &mut Prg) -> (BoolShare, BoolShare) {
    let s0 = prg.bits(values.len());
    let s1 = values.xor(&s0);
    (BoolShare(s0), BoolShare(s1))
}
