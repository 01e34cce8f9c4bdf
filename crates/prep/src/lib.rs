//! Correlated randomness: what the dealer generates and how each party gets
//! its half.
//!
//! **Two roles, one trait boundary.** Every protocol has a dealer-side
//! `deal` (written against the [`Dealer`]) and a party-side `take` (written
//! against the [`PrepSource`] trait). The online phase only ever sees a
//! `&mut dyn PrepSource`: where the material comes from is not its business.
//! [`PartyPrep`] is the trusted-dealer implementation (a seed plus the
//! dealer's corrections). A dealer-free preprocessing (OT- or HE-based, run
//! between the two parties) is an *addition*: it produces each party's
//! shares of the same correlations, in the same order, and hands them to the
//! unchanged online protocols through its own `PrepSource` implementation.
//!
//! The dealer side is deliberately *not* a trait: [`Dealer`]'s methods take
//! and return the correlations' clear values, which only a trusted third
//! party ever holds. A two-party generator has no such values, so an
//! interface over them could not be implemented by it; it plugs in on the
//! party side instead.
//!
//! **Seed expansion.** At the start of a session the dealer sends each party
//! a 32-byte seed. Every share a party can derive on its own comes from its
//! seed's PRG (free); where a share must satisfy a correlation the dealer
//! computes it and sends the *client* only the correction (`value - provider
//! share`). So per correlated element the dealer sends one element (or one
//! bit) instead of two, and nothing to the provider beyond its seed.
//!
//! **Material both parties receive verbatim** ([`Dealer::public`]): some
//! correlations cannot be expanded from one party's seed at all, for
//! instance the correction words of a function-secret-sharing key, which
//! both keys of a pair hold. The dealer sends those bytes to both parties;
//! they are the only per-batch material the provider receives.
//!
//! **Mirrored calls.** [`Dealer`] and [`PrepSource`] have the same methods
//! with the same names. A protocol's `deal` and `take` call them in the same
//! order, so both sides' PRG streams and the correction stream stay aligned.
//! If they ever diverge (a different plan), the party runs out of or has
//! left-over corrections and gets a typed [`PrepError`] from
//! [`PrepSource::finish`]; a plan digest checked before any material is used
//! catches a different architecture up front.

use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_ring::{ELEM_BYTES, Elem, bytes_to_elems, elems_to_bytes};
use cryptmed_share::{Prg, Role, Seed};
use zeroize::Zeroize;

/// Why material could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrepError {
    /// The dealer sent less material than this party's plan consumes.
    #[error("dealer material exhausted: wanted {wanted} more bytes, {left} left (plans differ)")]
    Exhausted {
        /// Bytes requested.
        wanted: usize,
        /// Bytes remaining.
        left: usize,
    },
    /// The dealer sent more material than this party's plan consumed.
    #[error("dealer material left over: {0} bytes unused (plans differ)")]
    LeftOver(usize),
}

/// Counts of material by kind (for reports and plan-versus-actual checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Ring elements derived from seeds (free).
    pub seeded_elems: u64,
    /// Bits derived from seeds (free).
    pub seeded_bits: u64,
    /// Ring elements sent as corrections.
    pub corrected_elems: u64,
    /// Bits sent as corrections.
    pub corrected_bits: u64,
    /// Bytes sent verbatim to both parties (counted once).
    pub public_bytes: u64,
}

/// The dealer's side: mirrors both parties' PRGs and collects corrections
/// for the client. Its PRG states and uncollected material are wiped on
/// drop; what [`Dealer::take`] hands out is the caller's to wipe.
pub struct Dealer {
    prg: [Prg; 2],
    /// Bytes for each party (indexed by [`Role::index`]) since the last [`Dealer::take`].
    outgoing: [Vec<u8>; 2],
    usage: Usage,
}

impl Drop for Dealer {
    fn drop(&mut self) {
        self.outgoing.iter_mut().for_each(Zeroize::zeroize);
    }
}

/// Shows how much material was generated, never the PRG state or the corrections.
impl std::fmt::Debug for Dealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dealer")
            .field("pending_provider_bytes", &self.outgoing[0].len())
            .field("pending_client_bytes", &self.outgoing[1].len())
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

impl Dealer {
    /// A dealer for a session whose parties hold `seeds[0]` (provider) and `seeds[1]` (client).
    pub fn new(provider_seed: &Seed, client_seed: &Seed) -> Self {
        Self {
            prg: [Prg::new(provider_seed, 0), Prg::new(client_seed, 0)],
            outgoing: [Vec::new(), Vec::new()],
            usage: Usage::default(),
        }
    }

    /// Values known to `owner` only (for instance the provider's weight mask).
    pub fn private(&mut self, owner: Role, n: usize) -> Vec<Elem> {
        self.usage.seeded_elems += n as u64;
        self.prg[owner.index()].elems(n)
    }

    /// A uniformly random value shared between the parties; both shares are
    /// seeded, so it costs nothing to send. Returns the value.
    pub fn random_arith(&mut self, n: usize) -> Vec<Elem> {
        self.usage.seeded_elems += 2 * n as u64;
        let a = self.prg[0].elems(n);
        let b = self.prg[1].elems(n);
        cryptmed_ring::add(&a, &b)
    }

    /// Shares the dealer-computed `v`: the provider's share is seeded, the client gets `v - share`.
    pub fn share_arith(&mut self, v: &[Elem]) {
        self.usage.seeded_elems += v.len() as u64;
        self.usage.corrected_elems += v.len() as u64;
        let s0 = self.prg[0].elems(v.len());
        elems_to_bytes(&cryptmed_ring::sub(v, &s0), &mut self.outgoing[1]);
    }

    /// Uniformly random bits XOR-shared between the parties (both seeded). Returns the bits.
    pub fn random_bits(&mut self, n: usize) -> BitVec {
        self.usage.seeded_bits += 2 * n as u64;
        let a = self.prg[0].bits(n);
        a.xor(&self.prg[1].bits(n))
    }

    /// XOR-shares the dealer-computed bits `v`: seeded provider share, client gets the correction.
    pub fn share_bits(&mut self, v: &BitVec) {
        self.usage.seeded_bits += v.len() as u64;
        self.usage.corrected_bits += v.len() as u64;
        let s0 = self.prg[0].bits(v.len());
        v.xor(&s0).write_bytes(&mut self.outgoing[1]);
    }

    /// Sends `bytes` verbatim to both parties (material no seed can expand,
    /// such as the correction words both keys of an FSS key pair hold).
    pub fn public(&mut self, bytes: &[u8]) {
        self.usage.public_bytes += bytes.len() as u64;
        for out in &mut self.outgoing {
            out.extend_from_slice(bytes);
        }
    }

    /// Takes the bytes collected for `role` since the last call (to send to it).
    pub fn take(&mut self, role: Role) -> Vec<u8> {
        std::mem::take(&mut self.outgoing[role.index()])
    }

    /// Bytes collected for both parties since the last [`Dealer::take`] of each.
    pub fn pending_bytes(&self) -> usize {
        self.outgoing[0].len() + self.outgoing[1].len()
    }

    /// Material generated so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }
}

/// A party's source of correlated randomness: its halves of the material
/// the protocols' `take` functions consume, in the order they call for it.
///
/// Each method mirrors the [`Dealer`] method of the same name. Implemented
/// by [`PartyPrep`] (trusted dealer: seed plus corrections); a dealer-free
/// preprocessing implements it too (see the crate docs).
pub trait PrepSource {
    /// This party's role.
    fn role(&self) -> Role;

    /// Mirror of [`Dealer::private`]: `Some(values)` for `owner`, `None` for the other party.
    fn private(&mut self, owner: Role, n: usize) -> Option<Vec<Elem>>;

    /// Mirror of [`Dealer::random_arith`]: this party's share of `n` uniform values.
    fn random_arith(&mut self, n: usize) -> Vec<Elem>;

    /// Mirror of [`Dealer::share_arith`]: this party's share of `n` correlated values.
    fn share_arith(&mut self, n: usize) -> Vec<Elem>;

    /// Mirror of [`Dealer::random_bits`]: this party's XOR share of `n` uniform bits.
    fn random_bits(&mut self, n: usize) -> BitVec;

    /// Mirror of [`Dealer::share_bits`]: this party's XOR share of `n` correlated bits.
    fn share_bits(&mut self, n: usize) -> BitVec;

    /// Mirror of [`Dealer::public`]: the `n` bytes both parties receive verbatim.
    fn public(&mut self, n: usize) -> Vec<u8>;

    /// Checks that the batch's material was consumed exactly (a different
    /// plan on the two sides is a typed error here, never silent garbage).
    fn finish(&mut self) -> Result<(), PrepError>;
}

/// The trusted-dealer [`PrepSource`]: the party's seeded PRG and the
/// material received from the dealer (the client's corrections, and for
/// both parties the bytes of [`Dealer::public`]). Its PRG state and the
/// loaded material are wiped on drop and when new material replaces them.
pub struct PartyPrep {
    role: Role,
    prg: Prg,
    material: Vec<u8>,
    pos: usize,
    error: Option<PrepError>,
}

impl Drop for PartyPrep {
    fn drop(&mut self) {
        self.material.zeroize();
    }
}

/// Shows the role and how much material is loaded, never the PRG state or the corrections.
impl std::fmt::Debug for PartyPrep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyPrep")
            .field("role", &self.role)
            .field("material_bytes", &self.material.len())
            .field("consumed", &self.pos)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl PartyPrep {
    /// The material source of `role`, seeded with the seed the dealer sent it.
    pub fn new(role: Role, seed: &Seed) -> Self {
        Self {
            role,
            prg: Prg::new(seed, 0),
            material: Vec::new(),
            pos: 0,
            error: None,
        }
    }

    /// Installs material received from the dealer (what [`Dealer::take`] gave for this role).
    pub fn load(&mut self, material: Vec<u8>) {
        self.material.zeroize();
        self.material = material;
        self.pos = 0;
        self.error = None;
    }

    /// Reads `n` material bytes; on exhaustion records the error (reported by
    /// [`finish`](PrepSource::finish)) and returns zeros so the protocol can unwind.
    fn read(&mut self, n: usize) -> &[u8] {
        let left = self.material.len() - self.pos;
        if n > left {
            if self.error.is_none() {
                self.error = Some(PrepError::Exhausted { wanted: n, left });
            }
            self.material.resize(self.pos + n, 0);
        }
        let s = &self.material[self.pos..self.pos + n];
        self.pos += n;
        s
    }
}

impl PrepSource for PartyPrep {
    fn role(&self) -> Role {
        self.role
    }

    fn private(&mut self, owner: Role, n: usize) -> Option<Vec<Elem>> {
        (owner == self.role).then(|| self.prg.elems(n))
    }

    fn random_arith(&mut self, n: usize) -> Vec<Elem> {
        self.prg.elems(n)
    }

    fn share_arith(&mut self, n: usize) -> Vec<Elem> {
        match self.role {
            Role::Provider => self.prg.elems(n),
            Role::Client => bytes_to_elems(self.read(n * ELEM_BYTES)),
        }
    }

    fn random_bits(&mut self, n: usize) -> BitVec {
        self.prg.bits(n)
    }

    fn share_bits(&mut self, n: usize) -> BitVec {
        match self.role {
            Role::Provider => self.prg.bits(n),
            Role::Client => BitVec::from_bytes(self.read(bytes_for(n)), n),
        }
    }

    fn public(&mut self, n: usize) -> Vec<u8> {
        self.read(n).to_vec()
    }

    fn finish(&mut self) -> Result<(), PrepError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let left = self.material.len() - self.pos;
        if left != 0 {
            return Err(PrepError::LeftOver(left));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_calls_give_consistent_shares() {
        let (s0, s1) = (Seed::from_u64(1), Seed::from_u64(2));
        let mut d = Dealer::new(&s0, &s1);
        let mut p = PartyPrep::new(Role::Provider, &s0);
        let mut c = PartyPrep::new(Role::Client, &s1);
        let r = d.random_arith(5);
        let v: Vec<Elem> = r.iter().map(|x| x.wrapping_mul(3)).collect();
        d.share_arith(&v);
        let bits = d.random_bits(70);
        d.share_bits(&bits.not());
        let b = d.private(Role::Provider, 3);
        d.public(b"both");
        p.load(d.take(Role::Provider));
        c.load(d.take(Role::Client));

        let (r0, r1) = (p.random_arith(5), c.random_arith(5));
        assert_eq!(cryptmed_ring::add(&r0, &r1), r);
        let (v0, v1) = (p.share_arith(5), c.share_arith(5));
        assert_eq!(cryptmed_ring::add(&v0, &v1), v);
        assert_eq!(p.random_bits(70).xor(&c.random_bits(70)), bits);
        assert_eq!(p.share_bits(70).xor(&c.share_bits(70)), bits.not());
        assert_eq!(p.private(Role::Provider, 3), Some(b));
        assert_eq!(c.private(Role::Provider, 3), None);
        assert_eq!(p.public(4), b"both");
        assert_eq!(c.public(4), b"both");
        assert_eq!(p.finish(), Ok(()));
        assert_eq!(c.finish(), Ok(()));
    }

    #[test]
    fn a_different_plan_is_a_typed_error() {
        let (s0, s1) = (Seed::from_u64(1), Seed::from_u64(2));
        let mut d = Dealer::new(&s0, &s1);
        d.share_arith(&[1, 2, 3]);
        let mut c = PartyPrep::new(Role::Client, &s1);
        c.load(d.take(Role::Client));
        c.share_arith(2);
        assert_eq!(c.finish(), Err(PrepError::LeftOver(8)));
        c.load(vec![0; 8]);
        c.share_arith(2);
        assert!(matches!(
            c.finish(),
            Err(PrepError::Exhausted {
                wanted: 16,
                left: 8
            })
        ));
    }

    #[test]
    fn debug_never_prints_material() {
        let (s0, s1) = (Seed::from_u64(1), Seed::from_u64(2));
        let mut d = Dealer::new(&s0, &s1);
        d.share_arith(&[0x0123_4567_89ab_cdef; 6]);
        let shown_dealer = format!("{d:?} {d:#?}");
        let corrections = d.take(Role::Client);
        let mut c = PartyPrep::new(Role::Client, &s1);
        c.load(corrections.clone());
        let shown_party = format!("{c:?} {c:#?}");
        for shown in [&shown_dealer, &shown_party] {
            assert!(!shown.contains('['), "a vector was printed: {shown}");
            for e in bytes_to_elems(&corrections) {
                assert!(!shown.contains(&e.to_string()) && !shown.contains(&format!("{e:x}")));
            }
            assert!(!shown.contains("81985529216486895"), "{shown}"); // the value itself
        }
        assert!(shown_party.contains("material_bytes: 48"), "{shown_party}");
    }
}
