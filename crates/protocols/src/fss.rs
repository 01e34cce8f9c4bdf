//! The comparison by function secret sharing ([`Fss`]): every comparison and
//! every selection is computed locally from the opened `c = x + r`, with no
//! round after the opening, from dealer keys of a distributed comparison
//! function ([`cryptmed_fss::Dcf`]).
//!
//! **The sign from one key.** With `c' = c mod 2^63`, `r' = r mod 2^63`:
//! `[x < t] = msb(c - t - r) = p ^ r63 ^ y`, where `p` is the public top bit
//! of `c - t` and `y = [(c - t)' < r']`. `y` is a DCF with the secret point
//! `alpha = r'` evaluated at the public `(c - t)'`: one key per masked value
//! serves every threshold (a threshold only moves the point).
//!
//! **Bits** ([`less_than`](crate::Comparison::less_than)): a DCF over GF(2)
//! with payload 1 gives XOR shares of `y`; the dealer XOR-shares `r63`.
//!
//! **Selections** (`[x < t] * D` for dealer terms `D`, see
//! [`Selection`]): with `s = r63 ^ y = r63 + (1 - 2 r63) y`,
//! `[x < t] D = p D + (1 - 2p) (r63 D + y (1 - 2 r63) D)`. So the key's
//! payload is the vector `(1 - 2 r63) (1, D_1, .., D_k)` over the ring
//! (shares of `y` times each), the dealer shares `r63` and each `r63 D_m`,
//! and the parties already hold shares of `D_m` (the forms' terms): every
//! product is then linear with public coefficients. ReLU with its fused
//! truncation (`x >> k = K + a r63 - q`, terms `r63` and `q`) takes a
//! payload of 3 elements; max pooling (`x = c - r`) 2; a spline one key
//! whose payload carries every term its pieces use, evaluated at every
//! breakpoint.
//!
//! **Cost.** Online: nothing beyond the opening (0 bytes, 0 rounds here);
//! the traces count the key bytes each party evaluates
//! ([`Trace::key_bytes_evaluated`], key size times points), the local work
//! latency predictions weigh at the machine's measured speed.
//! Dealer, for `n` values ([`offline_bytes`](crate::Comparison::offline_bytes),
//! [`select_offline_bytes`](crate::Comparison::select_offline_bytes)): the
//! keys' correction words to *both* parties (`2 n K` with
//! [`cryptmed_fss::key_bytes`] `K` = 1,016 bytes for bits, `1,008 + 512 w`
//! for a `w`-element ring payload), plus corrections to the client: `n/8`
//! bytes of `r63` for bits, `8 n (1 + u)` for a selection using `u` terms.
//! The root seeds come from each party's own PRG (free). A 63-bit key
//! evaluation is 63 AES calls for the seed plus `ceil(w/2)` per level for
//! the payload, per threshold.

use cryptmed_fss::{Dcf, Ring, Xor, key_bytes};
use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bit_planes};
use cryptmed_share::Role;

use crate::compare::{Comparison, Selection};
use crate::cost::{Cost, Trace, bit_bytes};
use crate::select::{self, Form};
use crate::{Ctx, ProtocolError};

/// Input bits of the DCFs: the low 63 bits of `c - t` and `r`.
const BITS: u32 = 63;
const LOW: Elem = Elem::MAX >> 1;

/// The comparison by function secret sharing (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fss;

impl Fss {
    /// The one configuration.
    pub const DEFAULT: Fss = Fss;
}

/// Two ring elements per root seed, as a party's PRG gives them.
fn roots(words: Vec<Elem>) -> Vec<u128> {
    words
        .chunks_exact(2)
        .map(|w| u128::from(w[0]) | u128::from(w[1]) << 64)
        .collect()
}

/// Dealer: both parties' root seeds for `n` keys, each from that party's PRG.
fn deal_roots(d: &mut Dealer, n: usize) -> [Vec<u128>; 2] {
    [
        roots(d.private(Role::Provider, 2 * n)),
        roots(d.private(Role::Client, 2 * n)),
    ]
}

/// Party: its own root seeds for `n` keys (mirror of [`deal_roots`]).
fn take_roots(p: &mut dyn PrepSource, n: usize) -> Vec<u128> {
    let provider = p.private(Role::Provider, 2 * n);
    let client = p.private(Role::Client, 2 * n);
    roots(provider.or(client).unwrap_or_default())
}

/// Each value's evaluation points, value-major: `(c_i - t_j) mod 2^63`.
fn points(c: &[Elem], thresholds: &[Elem]) -> Vec<Elem> {
    c.iter()
        .flat_map(|c| thresholds.iter().map(move |t| c.wrapping_sub(*t) & LOW))
        .collect()
}

/// The public top bit `p` of `c_i - t_j`, value-major.
fn tops(c: &[Elem], thresholds: &[Elem]) -> Vec<Elem> {
    c.iter()
        .flat_map(|c| thresholds.iter().map(move |t| c.wrapping_sub(*t) >> 63))
        .collect()
}

/// This party's material for [`Comparison::less_than`].
pub struct FssBits {
    roots: Vec<u128>,
    cws: Vec<u8>,
    r63: BitVec,
}

/// This party's material for a selection.
pub struct FssSelect {
    roots: Vec<u128>,
    cws: Vec<u8>,
    /// Share of `r63`.
    r63: Vec<Elem>,
    /// Shares of `r63 D` for each used term, in [`Selection::used_terms`] order.
    r63_terms: Vec<Vec<Elem>>,
    /// For each term of the table, its slot among the used terms.
    slot: Vec<usize>,
}

/// A selection's online result: the top bits `p`, and the shares of
/// `y (1 - 2 r63) (1, D..)` for each value and threshold.
pub struct FssSelected {
    tops: Vec<Elem>,
    out: Vec<Elem>,
    width: usize,
}

/// The payload width of a selection: 1 plus the used terms.
fn width(sel: &Selection) -> usize {
    1 + sel.used_terms().len()
}

impl Comparison for Fss {
    type Material = FssBits;
    type SelectMaterial = FssSelect;
    type Selected = FssSelected;

    fn name(&self) -> &'static str {
        "fss-dcf"
    }

    fn deal(&self, d: &mut Dealer, r: &[Elem], _thresholds: usize) {
        let n = r.len();
        let [r0, r1] = deal_roots(d, n);
        let alphas: Vec<Elem> = r.iter().map(|x| x & LOW).collect();
        let dcf = Dcf::<Xor>::new(BITS, 1);
        d.public(&dcf.keygen([&r0, &r1], &alphas, &vec![1; n]));
        d.share_bits(&bit_planes(r, 64)[63]);
    }

    fn take(&self, p: &mut dyn PrepSource, n: usize, _thresholds: usize) -> FssBits {
        let roots = take_roots(p, n);
        let cws = p.public(n * key_bytes::<Xor>(BITS, 1));
        FssBits {
            roots,
            cws,
            r63: p.share_bits(n),
        }
    }

    fn less_than(
        &self,
        ctx: &mut Ctx<'_>,
        c: &[Elem],
        thresholds: &[Elem],
        mat: &FssBits,
    ) -> Result<Vec<BitVec>, ProtocolError> {
        let (n, m, lead) = (c.len(), thresholds.len(), ctx.lead());
        let y = Dcf::<Xor>::new(BITS, 1).eval(
            ctx.role.index(),
            &mat.roots,
            &mat.cws,
            &points(c, thresholds),
            m.max(1),
        );
        let top = tops(c, thresholds);
        Ok((0..m)
            .map(|j| {
                let mut b = BitVec::zeros(n);
                for i in 0..n {
                    let p = if lead { top[i * m + j] } else { 0 };
                    b.set(i, y[i * m + j] ^ mat.r63.get(i) ^ p);
                }
                b
            })
            .collect())
    }

    fn trace(&self, n: usize, thresholds: usize) -> Trace {
        Trace::evaluating((n * thresholds.max(1) * key_bytes::<Xor>(BITS, 1)) as u64)
    }

    fn cost(&self, _: usize, _: usize) -> Cost {
        Cost::default()
    }

    fn offline_bytes(&self, n: usize, _: usize) -> u64 {
        2 * (n * key_bytes::<Xor>(BITS, 1)) as u64 + bit_bytes(n)
    }

    fn deal_select(&self, d: &mut Dealer, r: &[Elem], sel: &Selection, terms: &[&[Elem]]) {
        let n = r.len();
        let used = sel.used_terms();
        let w = 1 + used.len();
        let [r0, r1] = deal_roots(d, n);
        let alphas: Vec<Elem> = r.iter().map(|x| x & LOW).collect();
        let r63: Vec<Elem> = r.iter().map(|x| x >> 63).collect();
        let mut betas = Vec::with_capacity(n * w);
        for (i, b) in r63.iter().enumerate() {
            let sign = 1u64.wrapping_sub(2 * b);
            betas.push(sign);
            betas.extend(used.iter().map(|u| sign.wrapping_mul(terms[*u][i])));
        }
        d.public(&Dcf::<Ring>::new(BITS, w).keygen([&r0, &r1], &alphas, &betas));
        d.share_arith(&r63);
        for u in &used {
            let prod: Vec<Elem> = r63
                .iter()
                .zip(terms[*u])
                .map(|(b, t)| b.wrapping_mul(*t))
                .collect();
            d.share_arith(&prod);
        }
    }

    fn take_select(&self, p: &mut dyn PrepSource, n: usize, sel: &Selection) -> FssSelect {
        let used = sel.used_terms();
        let roots = take_roots(p, n);
        let cws = p.public(n * key_bytes::<Ring>(BITS, 1 + used.len()));
        let r63 = p.share_arith(n);
        let r63_terms = used.iter().map(|_| p.share_arith(n)).collect();
        let mut slot = vec![usize::MAX; sel.terms];
        for (k, u) in used.iter().enumerate() {
            slot[*u] = k;
        }
        FssSelect {
            roots,
            cws,
            r63,
            r63_terms,
            slot,
        }
    }

    fn select(
        &self,
        ctx: &mut Ctx<'_>,
        c: &[Elem],
        thresholds: &[Elem],
        sel: &Selection,
        mat: &FssSelect,
    ) -> Result<FssSelected, ProtocolError> {
        let w = width(sel);
        let out = Dcf::<Ring>::new(BITS, w).eval(
            ctx.role.index(),
            &mat.roots,
            &mat.cws,
            &points(c, thresholds),
            thresholds.len().max(1),
        );
        Ok(FssSelected {
            tops: tops(c, thresholds),
            out,
            width: w,
        })
    }

    fn finish(
        &self,
        lead: bool,
        sel: &Selection,
        mat: &FssSelect,
        done: &FssSelected,
        s: usize,
        form: &Form<'_>,
    ) -> Vec<Elem> {
        let selector = &sel.selectors[s];
        let m = sel.thresholds;
        let w = done.width;
        let slots: Vec<usize> = selector.terms.iter().map(|t| mat.slot[*t]).collect();
        let n = form.constant.len();
        (0..n)
            .map(|i| {
                let mut acc: Elem = 0;
                if selector.one {
                    acc = select::local_at(lead, form, i);
                }
                for (j, e) in &selector.bits {
                    let at = i * m + j;
                    let (p, y) = (done.tops[at], &done.out[at * w..(at + 1) * w]);
                    let flip = 1u64.wrapping_sub(2 * p);
                    // b_j * 1, then b_j * D for each term of the form.
                    let one = u64::from(lead) * p;
                    let mut bv = form.constant[i].wrapping_mul(
                        one.wrapping_add(flip.wrapping_mul(mat.r63[i].wrapping_add(y[0]))),
                    );
                    for ((alpha, share), slot) in form.terms.iter().zip(&slots) {
                        let r63d = mat.r63_terms[*slot][i];
                        let bd = p
                            .wrapping_mul(share[i])
                            .wrapping_add(flip.wrapping_mul(r63d.wrapping_add(y[1 + slot])));
                        bv = bv.wrapping_add(alpha[i].wrapping_mul(bd));
                    }
                    acc = if *e < 0 {
                        acc.wrapping_sub(bv)
                    } else {
                        acc.wrapping_add(bv)
                    };
                }
                acc
            })
            .collect()
    }

    fn select_trace(&self, n: usize, sel: &Selection) -> Trace {
        let points = n * sel.thresholds.max(1);
        Trace::evaluating((points * key_bytes::<Ring>(BITS, width(sel))) as u64)
    }

    fn select_cost(&self, _: usize, _: &Selection) -> Cost {
        Cost::default()
    }

    fn select_offline_bytes(&self, n: usize, sel: &Selection) -> u64 {
        let w = width(sel);
        2 * (n * key_bytes::<Ring>(BITS, w)) as u64 + 8 * (n * w) as u64
    }
}
