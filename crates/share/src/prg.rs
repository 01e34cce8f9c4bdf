//! The seeded pseudo-random generator: ChaCha12 keyed by a 32-byte [`Seed`],
//! with a 64-bit stream id so one seed yields many independent streams.
//!
//! **What is wiped.** [`Seed`] is zeroized on drop. The generator is the
//! `chacha20` crate's `ChaCha12Rng` with its `zeroize` feature, whose key
//! state and buffered keystream are zeroized on drop (`rand_chacha`'s
//! generator of the same stream implements no `Zeroize`, so it is not used;
//! a test checks both give the same stream). The byte buffer [`Prg::elems`]
//! fills is wiped once converted. What is *not* wiped here: the elements a
//! caller receives (its shares and masks; the material buffers of
//! `cryptmed-prep` wipe themselves), and copies the operating system or the
//! allocator may have made (swap, freed pages reused before a wipe).

use chacha20::ChaCha12Rng;
use cryptmed_ring::Elem;
use cryptmed_ring::bits::BitVec;
use rand_core::{Rng, SeedableRng};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The operating system's random source failed: no seed, id or mask can be
/// drawn, so the session must stop (never a default or zero value).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RngFailure(String);

/// Fills `buf` from the operating system's random source, or says it failed.
pub fn os_random(buf: &mut [u8]) -> Result<(), RngFailure> {
    getrandom::fill(buf).map_err(|e| RngFailure(e.to_string()))
}

/// A 32-byte PRG seed; wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Seed([u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// A fresh seed from the operating system's randomness; an error (never
    /// a panic, never a fixed seed) when that source fails.
    pub fn random() -> Result<Self, RngFailure> {
        let mut s = Self([0u8; 32]);
        os_random(&mut s.0)?;
        Ok(s)
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

/// A deterministic stream of pseudo-random ring elements and bits; its
/// state is wiped on drop (see the module docs).
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
        let mut bytes = Zeroizing::new(vec![0u8; n * 8]);
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

    #[test]
    fn the_stream_is_rand_chachas_chacha12() {
        use rand_chacha::rand_core::{Rng as _, SeedableRng as _};
        let s = Seed::from_u64(0x5eed);
        for stream in [0, 1, u64::MAX] {
            let mut theirs = rand_chacha::ChaCha12Rng::from_seed(*s.as_bytes());
            theirs.set_stream(stream);
            let want: Vec<u64> = (0..40).map(|_| theirs.next_u64()).collect();
            assert_eq!(Prg::new(&s, stream).elems(40), want, "stream {stream}");
        }
    }

    #[test]
    fn the_generator_wipes_itself_and_fresh_seeds_differ() {
        fn wiped<T: ZeroizeOnDrop>() {}
        wiped::<ChaCha12Rng>();
        wiped::<Seed>();
        let (a, b) = (Seed::random().unwrap(), Seed::random().unwrap());
        assert_ne!(a, b);
        assert_ne!(a.as_bytes(), &[0u8; 32]);
    }
}
