//! The seeded pseudo-random generator: ChaCha12 (from `rand_chacha`) keyed by
//! a 32-byte [`Seed`], with a 64-bit stream id so one seed yields many
//! independent streams.

use cryptmed_ring::Elem;
use cryptmed_ring::bits::BitVec;
use rand_chacha::ChaCha12Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 32-byte PRG seed; wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Seed([u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// A fresh seed from the operating system's randomness.
    pub fn random() -> Self {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).expect("the operating system's random source failed");
        Self(b)
    }

    /// A seed from bytes (received from the dealer, or fixed in tests).
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// A deterministic seed from a number (tests and benchmarks only).
    pub fn from_u64(v: u64) -> Self {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&v.to_le_bytes());
        Self(b)
    }

    /// The raw bytes (to send to a party over an authenticated, encrypted link).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A deterministic stream of pseudo-random ring elements and bits.
pub struct Prg {
    rng: ChaCha12Rng,
}

impl std::fmt::Debug for Prg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prg(..)")
    }
}

impl Prg {
    /// Stream `stream` of `seed`.
    pub fn new(seed: &Seed, stream: u64) -> Self {
        let mut rng = ChaCha12Rng::from_seed(seed.0);
        rng.set_stream(stream);
        Self { rng }
    }

    /// One ring element.
    pub fn elem(&mut self) -> Elem {
        self.rng.next_u64()
    }

    /// `n` ring elements.
    pub fn elems(&mut self, n: usize) -> Vec<Elem> {
        let mut bytes = vec![0u8; n * 8];
        self.rng.fill_bytes(&mut bytes);
        cryptmed_ring::bytes_to_elems(&bytes)
    }

    /// `n` uniformly random bits, packed.
    pub fn bits(&mut self, n: usize) -> BitVec {
        let words = self.elems(cryptmed_ring::bits::words_for(n));
        BitVec::from_words(words, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_independent() {
        let s = Seed::from_u64(7);
        assert_eq!(Prg::new(&s, 0).elems(4), Prg::new(&s, 0).elems(4));
        assert_ne!(Prg::new(&s, 0).elems(4), Prg::new(&s, 1).elems(4));
        assert_eq!(format!("{s:?}"), "Seed(..)");
        let b = Prg::new(&s, 3).bits(100);
        let ones: u64 = b.to_u64s().iter().sum();
        assert!((20..80).contains(&ones));
    }
}
