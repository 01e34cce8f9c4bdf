//! Secure comparison: the sign of masked values, as XOR-shared bits or
//! multiplied by dealer-known values.
//!
//! The [`Comparison`] trait takes values already opened as `c = x + r` (see
//! [`mask`](crate::mask)) and offers two things, for every public threshold
//! `t` (one opening serves them all, `[x < t] = msb(c - t - r)`):
//! - [`less_than`](Comparison::less_than): XOR shares of the bits `[x < t]`
//!   (argmax's AND tree works on these);
//! - a **selection** ([`deal_select`](Comparison::deal_select),
//!   [`select`](Comparison::select), [`Selected::times`]): arithmetic shares
//!   of `s(x) * v` for 0/1 combinations `s` of the threshold bits (a
//!   [`Selection`]: `[x >= 0]` for ReLU and pooling, each bound for Clip, the
//!   one-hot pieces of a spline) and values `v` that are linear forms in
//!   dealer-known terms with public coefficients ([`Form`]). ReLU with its
//!   fused truncation, max pooling, Clip, the smooth functions' piece
//!   selection, the symmetric functions' sign and argmax's win counts are all
//!   such products, so they are written once against this trait.
//!
//! Two implementations: CryptMed's parallel-prefix comparison ([`Ppa`]: the
//! bits in 4 rounds, a selection one opened bit per selector later, see
//! [`select`](crate::select)) and function secret sharing
//! ([`Fss`](crate::Fss): both locally, no round after the opening, at the
//! price of dealer keys; see [`fss`](crate::fss)).
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
//! bits per combine but one at the root). A selection with `S` selectors
//! adds one exchange of `S ceil(n/8)` bytes each way (1 round) and
//! [`select::offline_bytes`] per selector.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bit_planes, bytes_for, words_for};
use cryptmed_share::open::open_bits;

use crate::cost::{Cost, Trace, bit_bytes, ceil_log2};
use crate::select::{self, Form, SelectMaterial};
use crate::{Ctx, ProtocolError, and};

/// A 0/1 combination of the threshold bits `b_j = [x < t_j]`:
/// `one + sum_j e_j b_j` with `e_j` in `{+1, -1}`. The caller guarantees the
/// value is 0 or 1 for every input (for instance `b_{j+1} - b_j` with
/// ascending thresholds), so its parity (`one ^ XOR b_j`) is the same bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Whether the combination starts from 1 (e.g. `[x >= t] = 1 - b_0`).
    pub one: bool,
    /// The threshold bits combined, each with `+1` or `-1`.
    pub bits: Vec<(usize, i8)>,
    /// The dealer terms (indices into the selection's term table) that the
    /// forms multiplied by this selector use, in the forms' order.
    pub terms: Vec<usize>,
}

/// What a selection computes: `thresholds` comparisons of each masked value,
/// and one [`Selector`] per product the protocol needs, over a table of
/// `terms` dealer-known values per element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Thresholds compared with (one opening serves them all).
    pub thresholds: usize,
    /// Size of the term table given to [`Comparison::deal_select`].
    pub terms: usize,
    /// The selectors.
    pub selectors: Vec<Selector>,
}

impl Selection {
    /// `[x >= t]` for one threshold, times forms over all `terms` terms (ReLU, max pooling).
    pub fn at_least(terms: usize) -> Self {
        Self {
            thresholds: 1,
            terms,
            selectors: vec![Selector {
                one: true,
                bits: vec![(0, -1)],
                terms: (0..terms).collect(),
            }],
        }
    }

    /// `[x < t_j]` for each of `thresholds` thresholds, times forms over all `terms` terms.
    pub fn below(thresholds: usize, terms: usize) -> Self {
        Self {
            thresholds,
            terms,
            selectors: (0..thresholds)
                .map(|j| Selector {
                    one: false,
                    bits: vec![(j, 1)],
                    terms: (0..terms).collect(),
                })
                .collect(),
        }
    }

    /// The terms any selector uses, ascending.
    pub fn used_terms(&self) -> Vec<usize> {
        let mut u: Vec<usize> = self
            .selectors
            .iter()
            .flat_map(|s| s.terms.iter().copied())
            .collect();
        u.sort_unstable();
        u.dedup();
        u
    }
}

/// The selection of one layer after its online part: hands out this
/// party's shares of `s(x) * v` ([`times`](Self::times)).
pub struct Selected<'a, C: Comparison + ?Sized> {
    cmp: &'a C,
    lead: bool,
    sel: &'a Selection,
    mat: &'a C::SelectMaterial,
    done: C::Selected,
}

impl<C: Comparison + ?Sized> Selected<'_, C> {
    /// This party's shares of `s(x) * v` for selector `s` and a form `v`
    /// whose terms are the selector's, in order (local).
    pub fn times(&self, s: usize, form: &Form<'_>) -> Vec<Elem> {
        debug_assert_eq!(form.terms.len(), self.sel.selectors[s].terms.len());
        self.cmp
            .finish(self.lead, self.sel, self.mat, &self.done, s, form)
    }
}

/// Runs the online part of a selection on the opened `c` (see [`Comparison::select`]).
pub fn select<'a, C: Comparison + ?Sized>(
    cmp: &'a C,
    ctx: &mut Ctx<'_>,
    c: &[Elem],
    thresholds: &[Elem],
    sel: &'a Selection,
    mat: &'a C::SelectMaterial,
) -> Result<Selected<'a, C>, ProtocolError> {
    debug_assert_eq!(thresholds.len(), sel.thresholds);
    let done = cmp.select(ctx, c, thresholds, sel, mat)?;
    Ok(Selected {
        cmp,
        lead: ctx.lead(),
        sel,
        mat,
        done,
    })
}

/// A secure "less than" on masked values (see the module docs).
pub trait Comparison: Send + Sync {
    /// This party's material for one use of [`less_than`](Self::less_than).
    type Material: Send;
    /// This party's material for one [`Selection`].
    type SelectMaterial: Send;
    /// What the online part of a selection leaves for [`finish`](Self::finish).
    type Selected: Send;

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

    /// The closed-form dealer bytes of [`deal`](Self::deal) (to both parties).
    fn offline_bytes(&self, n: usize, thresholds: usize) -> u64;

    /// Dealer: material for the selection `sel` on `r.len()` values masked
    /// by `r`; `terms[m]` is the dealer's value of term `m` for every value.
    fn deal_select(&self, d: &mut Dealer, r: &[Elem], sel: &Selection, terms: &[&[Elem]]);

    /// Party: mirror of [`deal_select`](Self::deal_select).
    fn take_select(
        &self,
        p: &mut dyn PrepSource,
        n: usize,
        sel: &Selection,
    ) -> Self::SelectMaterial;

    /// The online part of a selection on `c = x + r` (everything that needs
    /// the peer); use [`select`](crate::compare::select), which wraps the
    /// result for [`Selected::times`].
    fn select(
        &self,
        ctx: &mut Ctx<'_>,
        c: &[Elem],
        thresholds: &[Elem],
        sel: &Selection,
        mat: &Self::SelectMaterial,
    ) -> Result<Self::Selected, ProtocolError>;

    /// This party's shares of `s(x) * v` for selector `s` of `sel` (local).
    fn finish(
        &self,
        lead: bool,
        sel: &Selection,
        mat: &Self::SelectMaterial,
        done: &Self::Selected,
        s: usize,
        form: &Form<'_>,
    ) -> Vec<Elem>;

    /// The communication of [`select`](Self::select).
    fn select_trace(&self, n: usize, sel: &Selection) -> Trace;

    /// The closed-form cost of [`select`](Self::select) (both ways, rounds).
    fn select_cost(&self, n: usize, sel: &Selection) -> Cost;

    /// The closed-form dealer bytes of [`deal_select`](Self::deal_select) (to both parties).
    fn select_offline_bytes(&self, n: usize, sel: &Selection) -> u64;
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

/// [`Ppa`]'s material for a selection: the comparison's, and one
/// [`select`](crate::select) material per selector.
pub struct PpaSelect {
    cmp: PpaMaterial,
    bits: Vec<SelectMaterial>,
}

/// Subsets (bit masks over a chunk of `k` bits) with two or more members, in a fixed order.
fn monomials(k: usize) -> impl Iterator<Item = usize> {
    (1usize..1 << k).filter(|s| s.count_ones() >= 2)
}

impl Comparison for Ppa {
    type Material = PpaMaterial;
    type SelectMaterial = PpaSelect;
    /// The opened bit of each selector.
    type Selected = Vec<BitVec>;

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

    fn deal_select(&self, d: &mut Dealer, r: &[Elem], sel: &Selection, terms: &[&[Elem]]) {
        self.deal(d, r, sel.thresholds);
        for s in &sel.selectors {
            let t: Vec<&[Elem]> = s.terms.iter().map(|i| terms[*i]).collect();
            select::deal(d, r.len(), &t);
        }
    }

    fn take_select(&self, p: &mut dyn PrepSource, n: usize, sel: &Selection) -> PpaSelect {
        PpaSelect {
            cmp: self.take(p, n, sel.thresholds),
            bits: sel
                .selectors
                .iter()
                .map(|s| select::take(p, n, s.terms.len()))
                .collect(),
        }
    }

    fn select(
        &self,
        ctx: &mut Ctx<'_>,
        c: &[Elem],
        thresholds: &[Elem],
        sel: &Selection,
        mat: &PpaSelect,
    ) -> Result<Vec<BitVec>, ProtocolError> {
        let lead = ctx.lead();
        let below = self.less_than(ctx, c, thresholds, &mat.cmp)?;
        let masked: Vec<BitVec> = sel
            .selectors
            .iter()
            .zip(&mat.bits)
            .map(|(s, m)| select::masked(&parity(lead, s, &below, c.len()), m))
            .collect();
        if masked.is_empty() {
            return Ok(masked);
        }
        let refs: Vec<&BitVec> = masked.iter().collect();
        Ok(open_bits(ctx.ch, &refs)?)
    }

    fn finish(
        &self,
        lead: bool,
        _: &Selection,
        mat: &PpaSelect,
        done: &Vec<BitVec>,
        s: usize,
        form: &Form<'_>,
    ) -> Vec<Elem> {
        select::finish(lead, &done[s], form, &mat.bits[s])
    }

    fn select_trace(&self, n: usize, sel: &Selection) -> Trace {
        let bits = sel.selectors.len();
        let t = self.trace(n, sel.thresholds);
        if bits == 0 {
            return t;
        }
        t.then(Trace::exchange((bits * bytes_for(n)) as u64))
    }

    fn select_cost(&self, n: usize, sel: &Selection) -> Cost {
        let bits = sel.selectors.len() as u64;
        let c = self.cost(n, sel.thresholds);
        if bits == 0 {
            return c;
        }
        c.then(Cost::exchange(bits * bit_bytes(n)))
    }

    fn select_offline_bytes(&self, n: usize, sel: &Selection) -> u64 {
        self.offline_bytes(n, sel.thresholds)
            + sel
                .selectors
                .iter()
                .map(|s| select::offline_bytes(n, s.terms.len()))
                .sum::<u64>()
    }
}

/// This party's XOR share of a selector's bit: `one ^ XOR b_j` (the constant by the lead only).
fn parity(lead: bool, s: &Selector, below: &[BitVec], n: usize) -> BitVec {
    let mut b = if lead && s.one {
        BitVec::ones(n)
    } else {
        BitVec::zeros(n)
    };
    for (j, _) in &s.bits {
        b.xor_assign(&below[*j]);
    }
    b
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
