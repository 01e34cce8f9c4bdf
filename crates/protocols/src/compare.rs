//! Secure comparison: the XOR-shared sign bit of masked values.
//!
//! The [`Comparison`] trait takes values already opened as `c = x + r` (see
//! [`mask`](crate::mask)) and returns XOR shares of `msb(c - t - r) = [x < t]`
//! for every public threshold `t` (one opening serves them all). ReLU, max
//! pooling, argmax and the smooth functions are written against this trait,
//! so a function-secret-sharing comparison can be added as a second
//! implementation without touching them.
//!
//! # CryptMed's comparison ([`Ppa`])
//!
//! With `c' = c mod 2^63` and `r' = r mod 2^63`:
//! `msb(c - r) = c63 ^ r63 ^ [c' < r']`. The carry `[c' < r']` is a
//! comparison of a public value with XOR-shared bits, computed as a
//! parallel-prefix (generate/propagate) tree: `g_j = r_j & !c_j`, `p_j = !(r_j
//! ^ c_j)`, and `(G, P)_hi o (G, P)_lo = (G_hi ^ P_hi & G_lo, P_hi & P_lo)`.
//!
//! Two optimisations over the textbook tree:
//! - **Free leaves.** The 63 bits are cut into chunks of `chunk` bits (default
//!   4). A chunk's `(G, P)` is a polynomial over GF(2) in its `r` bits whose
//!   coefficients depend only on the public `c`. The dealer shares every
//!   product of two or more `r` bits of a chunk (11 per 4-bit chunk), so each
//!   party evaluates its chunks locally: the first `log2(chunk)` tree levels
//!   cost nothing online.
//! - **Shared-operand triples.** Both products of a combine use `P_hi`, so one
//!   triple opens 3 bits instead of 4 (2 at the root, whose `P` is unused).
//!
//! Cost for `n` values and `k` thresholds ([`Comparison::cost`]): with `L =
//! ceil(63 / chunk)` leaves the tree has `L - 1` combines in `ceil(log2 L)`
//! levels, each opening 3 bit vectors except the root's 2, so each party
//! sends `k * (3L - 4) * ceil(n/8)` bytes in `ceil(log2 L)` rounds. Chunk 4:
//! 16 leaves, levels of 8, 4, 2, 1 combines, 4 rounds,
//! `k * (24 + 12 + 6 + 2) * ceil(n/8)` bytes, about 5.5 bytes per comparison.
//! Dealer ([`Comparison::offline_bytes`]): `(64 + 169 + 29 k) ceil(n/8)`
//! bytes (the bit planes of `r`, the chunk products, and per threshold two
//! bits per combine but one at the root).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bit_planes, bytes_for, words_for};
use cryptmed_share::open::open_bits;

use crate::cost::{Cost, Trace, bit_bytes, ceil_log2};
use crate::{Ctx, ProtocolError, and};

/// A secure "less than" on masked values (see the module docs).
pub trait Comparison: Send + Sync {
    /// This party's material for one use.
    type Material: Send;

    /// Short name for reports.
    fn name(&self) -> &'static str;

    /// Dealer: material for `r.len()` values masked by `r`, each compared with `thresholds` thresholds.
    fn deal(&self, d: &mut Dealer, r: &[Elem], thresholds: usize);

    /// Party: mirror of [`deal`](Self::deal).
    fn take(&self, p: &mut dyn PrepSource, n: usize, thresholds: usize) -> Self::Material;

    /// XOR shares of `[c_i - r_i < t]` for each threshold `t` (outer index) and value `i`.
    fn less_than(
        &self,
        ctx: &mut Ctx<'_>,
        c: &[Elem],
        thresholds: &[Elem],
        mat: &Self::Material,
    ) -> Result<Vec<BitVec>, ProtocolError>;

    /// The communication of [`less_than`](Self::less_than).
    fn trace(&self, n: usize, thresholds: usize) -> Trace;

    /// The closed-form cost of [`less_than`](Self::less_than) (both ways, rounds).
    fn cost(&self, n: usize, thresholds: usize) -> Cost;

    /// The closed-form dealer bytes of [`deal`](Self::deal) (corrections to the client).
    fn offline_bytes(&self, n: usize, thresholds: usize) -> u64;
}

/// CryptMed's comparison: parallel-prefix carry over bit-sliced XOR shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ppa {
    chunk: u32,
}

impl Default for Ppa {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Bits compared by the carry (the low 63 bits).
const LOW_BITS: usize = 63;

/// This party's material for [`Ppa`].
pub struct PpaMaterial {
    /// Shares of the 64 bit planes of `r`.
    rbits: Vec<BitVec>,
    /// Per chunk, shares of each product of two or more of its `r` bits.
    monos: Vec<Vec<BitVec>>,
    /// Per threshold, per level, per combine: a triple.
    triples: Vec<Vec<Vec<and::Triple>>>,
}

impl Ppa {
    /// Chunks of 4 bits: 4 online rounds, about 5.5 bytes per party per comparison.
    pub const DEFAULT: Ppa = Ppa { chunk: 4 };

    /// A comparison whose leaves are chunks of `chunk` bits (1 to 6).
    pub fn new(chunk: u32) -> Self {
        assert!((1..=6).contains(&chunk), "chunk must be 1..=6");
        Self { chunk }
    }

    fn chunks(&self) -> Vec<(usize, usize)> {
        let k = self.chunk as usize;
        (0..LOW_BITS.div_ceil(k))
            .map(|i| (i * k, ((i + 1) * k).min(LOW_BITS)))
            .collect()
    }

    /// The prefix tree: per level, the number of combines and whether their `P` is needed.
    fn levels(&self) -> Vec<(usize, bool)> {
        let mut count = self.chunks().len();
        let mut out = Vec::new();
        while count > 1 {
            let pairs = count / 2;
            let next = count - pairs;
            out.push((pairs, next > 1));
            count = next;
        }
        out
    }
}

/// Subsets (bit masks over a chunk of `k` bits) with two or more members, in a fixed order.
fn monomials(k: usize) -> impl Iterator<Item = usize> {
    (1usize..1 << k).filter(|s| s.count_ones() >= 2)
}

impl Comparison for Ppa {
    type Material = PpaMaterial;

    fn name(&self) -> &'static str {
        "cryptmed-ppa"
    }

    fn deal(&self, d: &mut Dealer, r: &[Elem], thresholds: usize) {
        let n = r.len();
        let planes = bit_planes(r, 64);
        for p in &planes {
            d.share_bits(p);
        }
        for (lo, hi) in self.chunks() {
            for s in monomials(hi - lo) {
                let mut m = BitVec::ones(n);
                for t in 0..hi - lo {
                    if s >> t & 1 == 1 {
                        m.and_assign(&planes[lo + t]);
                    }
                }
                d.share_bits(&m);
            }
        }
        for _ in 0..thresholds {
            for (pairs, need_p) in self.levels() {
                for _ in 0..pairs {
                    and::deal(d, n, if need_p { 2 } else { 1 });
                }
            }
        }
    }

    fn take(&self, p: &mut dyn PrepSource, n: usize, thresholds: usize) -> PpaMaterial {
        let rbits = (0..64).map(|_| p.share_bits(n)).collect();
        let monos = self
            .chunks()
            .into_iter()
            .map(|(lo, hi)| monomials(hi - lo).map(|_| p.share_bits(n)).collect())
            .collect();
        let triples = (0..thresholds)
            .map(|_| {
                self.levels()
                    .into_iter()
                    .map(|(pairs, need_p)| {
                        (0..pairs)
                            .map(|_| and::take(p, n, if need_p { 2 } else { 1 }))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        PpaMaterial {
            rbits,
            monos,
            triples,
        }
    }

    fn less_than(
        &self,
        ctx: &mut Ctx<'_>,
        c: &[Elem],
        thresholds: &[Elem],
        mat: &PpaMaterial,
    ) -> Result<Vec<BitVec>, ProtocolError> {
        let lead = ctx.lead();
        let n = c.len();
        // Leaves: every chunk's (G, P), locally, for every threshold.
        let mut nodes: Vec<Vec<(BitVec, BitVec)>> = Vec::with_capacity(thresholds.len());
        let mut tops = Vec::with_capacity(thresholds.len());
        for t in thresholds {
            let ct: Vec<Elem> = c.iter().map(|x| x.wrapping_sub(*t)).collect();
            let planes = bit_planes(&ct, 64);
            let leaves = self
                .chunks()
                .into_iter()
                .enumerate()
                .map(|(i, (lo, hi))| {
                    chunk_gp(lead, &planes[lo..hi], &mat.rbits[lo..hi], &mat.monos[i], n)
                })
                .collect();
            nodes.push(leaves);
            tops.push(planes[63].clone());
        }
        // The tree: one exchange per level for all thresholds.
        for (level, (pairs, need_p)) in self.levels().into_iter().enumerate() {
            let mut opened: Vec<BitVec> = Vec::new();
            for (ti, tnodes) in nodes.iter().enumerate() {
                for j in 0..pairs {
                    let (lo, hi) = (&tnodes[2 * j], &tnodes[2 * j + 1]);
                    let ys: Vec<&BitVec> = if need_p {
                        vec![&lo.0, &lo.1]
                    } else {
                        vec![&lo.0]
                    };
                    opened.extend(and::masked(&hi.1, &ys, &mat.triples[ti][level][j]));
                }
            }
            let refs: Vec<&BitVec> = opened.iter().collect();
            let public = open_bits(ctx.ch, &refs)?;
            let width = if need_p { 3 } else { 2 };
            for (ti, tnodes) in nodes.iter_mut().enumerate() {
                let mut next = Vec::with_capacity(tnodes.len() - pairs);
                for j in 0..pairs {
                    let base = (ti * pairs + j) * width;
                    let prods = and::finish(
                        lead,
                        &public[base],
                        &public[base + 1..base + width],
                        &mat.triples[ti][level][j],
                    );
                    let hi = &tnodes[2 * j + 1];
                    let g = hi.0.xor(&prods[0]);
                    let p = if need_p {
                        prods[1].clone()
                    } else {
                        BitVec::zeros(n)
                    };
                    next.push((g, p));
                }
                if tnodes.len() % 2 == 1 {
                    next.push(tnodes[tnodes.len() - 1].clone());
                }
                *tnodes = next;
            }
        }
        Ok(nodes
            .into_iter()
            .zip(tops)
            .map(|(tnodes, top)| {
                let mut b = tnodes[0].0.xor(&mat.rbits[63]);
                if lead {
                    b.xor_assign(&top);
                }
                b
            })
            .collect())
    }

    fn offline_bytes(&self, n: usize, thresholds: usize) -> u64 {
        let monos: usize = self
            .chunks()
            .iter()
            .map(|(lo, hi)| (1usize << (hi - lo)) - (hi - lo) - 1)
            .sum();
        let per_threshold: usize = self
            .levels()
            .iter()
            .map(|(pairs, need_p)| pairs * if *need_p { 2 } else { 1 })
            .sum();
        (64 + monos + thresholds * per_threshold) as u64 * bit_bytes(n)
    }

    fn cost(&self, n: usize, thresholds: usize) -> Cost {
        let leaves = LOW_BITS.div_ceil(self.chunk as usize);
        let per_party = (thresholds * (3 * leaves - 4)) as u64 * bit_bytes(n);
        Cost::new(2 * per_party, ceil_log2(leaves))
    }

    fn trace(&self, n: usize, thresholds: usize) -> Trace {
        let mut t = Trace::default();
        for (pairs, need_p) in self.levels() {
            let vectors = pairs * if need_p { 3 } else { 2 } * thresholds;
            t.append(Trace::exchange((vectors * bytes_for(n)) as u64));
        }
        t
    }
}

/// This party's shares of a chunk's `(G, P)` for `[c' < r']` restricted to the
/// chunk, by evaluating the chunk's GF(2) polynomial in the `r` bits with
/// public coefficients (bit-sliced over 64 lanes per word).
fn chunk_gp(
    lead: bool,
    cplanes: &[BitVec],
    rbits: &[BitVec],
    monos: &[BitVec],
    n: usize,
) -> (BitVec, BitVec) {
    let k = cplanes.len();
    let size = 1usize << k;
    // Share words of each monomial, by subset mask (index 0 is the constant).
    let mut mono_of = vec![usize::MAX; size];
    for (i, s) in monomials(k).enumerate() {
        mono_of[s] = i;
    }
    let words = words_for(n);
    let (mut gw, mut pw) = (vec![0u64; words], vec![0u64; words]);
    let mut g = vec![0u64; size];
    let mut p = vec![0u64; size];
    let mut ng = vec![0u64; size];
    let mut np = vec![0u64; size];
    for w in 0..words {
        let nc = |t: usize| !cplanes[t].words()[w];
        g.iter_mut().for_each(|x| *x = 0);
        p.iter_mut().for_each(|x| *x = 0);
        g[1] = nc(0);
        p[0] = nc(0);
        p[1] = u64::MAX;
        for t in 1..k {
            let bit = 1usize << t;
            let nct = nc(t);
            for s in 0..bit {
                ng[s] = nct & g[s];
                ng[s | bit] = g[s];
                np[s] = nct & p[s];
                np[s | bit] = p[s];
            }
            ng[bit] ^= nct;
            g[..2 * bit].copy_from_slice(&ng[..2 * bit]);
            p[..2 * bit].copy_from_slice(&np[..2 * bit]);
        }
        let (mut gs, mut ps) = if lead { (g[0], p[0]) } else { (0, 0) };
        for s in 1..size {
            let share = if s.count_ones() == 1 {
                rbits[s.trailing_zeros() as usize].words()[w]
            } else {
                monos[mono_of[s]].words()[w]
            };
            gs ^= g[s] & share;
            ps ^= p[s] & share;
        }
        gw[w] = gs;
        pw[w] = ps;
    }
    (BitVec::from_words(gw, n), BitVec::from_words(pw, n))
}
