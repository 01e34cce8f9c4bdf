//! Smooth functions as piecewise polynomials, evaluated exactly in the ring.
//!
//! The table ([`Piecewise`], from `cryptmed-approx`) has public breakpoints
//! and, per piece, an exact affine part (an integer slope, or a fixed-point
//! one with 62 fractional bits) plus a polynomial `sum_k a_k (x - center)^k`
//! at the piece's own scale; the output has the table's output scale `o`.
//!
//! Protocol, for an input `y` at scale `f + k` (`k > 0`: the truncation of
//! the preceding linear layer is fused in, as in [`relu`](crate::relu)):
//! 1. open `c = y + r` (1 round, 8 bytes each way per element);
//! 2. all `m` comparisons `[y < t_j 2^k]` from that one opening (4 rounds
//!    with [`Ppa`](crate::Ppa)), exact on the untruncated `y`;
//! 3. one-hot piece indicators, locally: `I_0 = b_1`, `I_j = b_j ^ b_{j+1}`,
//!    `I_m = !b_m`; with `g >= 2` polynomial scales, also the indicator of
//!    each scale's group (the XOR of its pieces');
//! 4. `I_j * piece_j` for every piece with one opened bit each, in one round
//!    (group bits in the same message). The input is a linear form in dealer
//!    values: `x = c - r` (`k = 0`), or `x' = y >> k = K - Q` with public `K`
//!    and `Q = (r' >> k) -+ 2^(63-k) r63` (the sign by the public top bit of
//!    `c + 2^62`; see [`mask`](crate::mask)), so a piece's polynomial is a
//!    linear form in the dealer-shared powers of `r` (or of both `Q`s) and one
//!    opened bit selects it (see [`select`](crate::select)); a fixed-point slope
//!    `floor(S y / 2^E)` is the linear form `K' + a r63 - floor(S r' / 2^E)` (to
//!    one unit). Ring arithmetic is exact mod 2^64, and the garbage a far-away
//!    piece would produce is multiplied by an exact 0;
//! 5. the selected polynomial sum (one value per element, whatever its scale)
//!    is opened once under a fresh mask and truncated to `o` from that one
//!    opening for every scale; the group bits of step 4 keep the right one
//!    (1 round). Unselected sums are exactly 0 and truncate to exactly 0.
//!
//! **Cost** for `n` elements ([`cost`], [`offline_bytes`]), with `m`
//! breakpoints, `P = m + 1` pieces, `g` polynomial scales and `G = g` when
//! `g >= 2` (else 0) group bits, `B = ceil(n/8)`:
//! online `16 n + 88 m B + 2 (P + G) B + 16 n [g > 0]` bytes both ways and
//! `7` rounds (`6` without polynomials); per element (`n` a multiple of 8)
//! `2 (8 + 5.5 m + (P + G)/8 + 8)`. Offline (dealer corrections): `8 n` per
//! dealt power (`r^2 .. r^d` when `k = 0`; `Q^1 .. Q^d` twice when `k > 0`;
//! `r63` and one per fixed-point slope), the comparison's
//! `(233 + 29 m) B`, `8 n (1 + t_j)` per piece using `t_j` dealer terms, and
//! `8 n (1 + g)` for the truncation plus `24 n` per group bit.
//!
//! Per element at 16 fractional bits (`n` a multiple of 8; asserted by the
//! tests against the measured traffic; dealer bytes for an input at `f`,
//! and at `2f` with the truncation fused, as the engine runs a layer after a
//! linear one; symmetric: [`symmetric`](crate::symmetric), fused):
//!
//! | table (accurate / fast) | breakpoints | scales | online bytes | rounds | dealer bytes, `k = 0` / `k = 16` | symmetric: breakpoints, online bytes, rounds, dealer bytes |
//! |---|---|---|---|---|---|---|
//! | sigmoid | 28 / 9 | 2 / 2 | 347.75 / 134 | 7 | 1098.6 / 1778.6 ; 421.75 / 645.75 | 18, 262, 13, 799.1 / 5, 115.75, 13, 336 |
//! | tanh | 27 / 9 | 2 / 2 | 336.5 / 134 | 7 | 1063 / 1719 ; 421.75 / 645.75 | 13, 205.75, 13, 621 / 4, 104.5, 13, 300.4 |
//! | erf | 19 / 7 | 2 / 2 | 246.5 / 111.5 | 7 | 778 / 1242 ; 350.5 / 526.5 | 9, 160.75, 13, 478.5 / 3, 93.25, 13, 264.75 |
//! | GELU (erf and tanh forms) | 17 / 5 | 1 / 1 | 223.5 / 88.5 | 7 | 658.75 / 1082.75 ; 231.25 / 367.25 | 8, 149.5, 13, 434.9 / 2, 82, 13, 221.1 |
//! | SiLU | 27 / 8 | 1 / 1 | 336 / 122.25 | 7 | 1015 / 1679 ; 338.1 / 546.1 | 13, 205.75, 13, 613 / 4, 104.5, 13, 292.4 |
//! | softplus | 16 / 5 | 1 / 1 | 212.25 / 88.5 | 7 | 623.1 / 1023.1 ; 231.25 / 367.25 | 7, 138.25, 13, 399.25 / 2, 82, 13, 221.1 |
//! | ELU (alpha 1) | 14 / 5 | 2 / 2 | 190.25 / 89 | 7 | 607.9 / 959.9 ; 287.25 / 423.25 | — |
//! | SELU | 15 / 5 | 2 / 1 | 201.5 / 88.5 | 7 | 667.5 / 1035.5 ; 255.25 / 383.25 | — |
//! | exp | 40 / 18 | 9 / 8 | 484.5 / 236.75 | 7 | 1750.1 / 2718.1 ; 934.4 / 1374.4 | — |
//! | reciprocal | 16 / 10 | 2 / 2 | 212.75 / 145.25 | 7 | 671.1 / 1063.1 ; 457.4 / 705.4 | — |
//! | leaky ReLU | 1 | 0 | 27.5 | 6 | 88.75 / 112.75 | — |
//!
//! Fusing the input truncation saves the stand-alone truncation a smooth
//! layer used to need inside a network (1 round and 16 bytes online, 16
//! dealer bytes per element), at the price of twice the dealer's
//! polynomial terms (the two `Q`s).
//!
//! The result equals the twin ([`Piecewise::eval_shifted`] with the input
//! truncation's round-up `up`) or is one unit above it.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_share::open::open_bits;

pub use cryptmed_approx::{Piece, Piecewise};

use crate::compare::Comparison;
use crate::cost::{Cost, Trace, bit_bytes};
use crate::mask::{self, Mask, OFFSET};
use crate::select::{self, Form, SelectMaterial};
use crate::{Ctx, ProtocolError};

/// A dealer value every element has (its index in [`Layout::terms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    /// `r^i` (`i >= 1`; `r^1` is the mask itself, not dealt).
    Pow(usize),
    /// `Q+^i = ((r' >> k) - 2^(63-k) r63)^i`.
    QPlus(usize),
    /// `Q-^i = ((r' >> k) + 2^(63-k) r63)^i`.
    QMinus(usize),
    /// The top bit of `r`.
    R63,
    /// `floor(S r' / 2^E)` for the `i`-th fixed-point slope.
    Frac(usize),
}

/// Which dealer values a table evaluated on inputs shifted by `k` needs.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    k: u32,
    terms: Vec<Term>,
    slopes: Vec<(i128, u32)>,
    piece_terms: Vec<Vec<usize>>,
    scales: Vec<u32>,
}

impl Layout {
    pub(crate) fn new(f: &Piecewise, k: u32) -> Self {
        let uses_x = |p: &Piece| !p.fractional() && p.slope != 0;
        let degree = f
            .pieces
            .iter()
            .map(|p| p.degree().max(usize::from(uses_x(p))))
            .max()
            .unwrap_or(0);
        let mut slopes: Vec<(i128, u32)> = Vec::new();
        for p in f.pieces.iter().filter(|p| p.fractional()) {
            let s = p.scaled_slope(k);
            if !slopes.contains(&s) {
                slopes.push(s);
            }
        }
        let mut terms: Vec<Term> = if k == 0 {
            (1..=degree).map(Term::Pow).collect()
        } else {
            (1..=degree)
                .map(Term::QPlus)
                .chain((1..=degree).map(Term::QMinus))
                .collect()
        };
        if !slopes.is_empty() {
            terms.push(Term::R63);
            terms.extend((0..slopes.len()).map(Term::Frac));
        }
        let index = |t: Term| terms.iter().position(|x| *x == t).unwrap_or(0);
        let piece_terms = f
            .pieces
            .iter()
            .map(|p| {
                let d = p.degree().max(usize::from(uses_x(p)));
                let mut v: Vec<usize> = if k == 0 {
                    (1..=d).map(|i| index(Term::Pow(i))).collect()
                } else {
                    (1..=d)
                        .flat_map(|i| [index(Term::QPlus(i)), index(Term::QMinus(i))])
                        .collect()
                };
                if p.fractional() {
                    let s = slopes
                        .iter()
                        .position(|s| *s == p.scaled_slope(k))
                        .unwrap_or(0);
                    v.extend([index(Term::R63), index(Term::Frac(s))]);
                }
                v
            })
            .collect();
        Self {
            k,
            terms,
            slopes,
            piece_terms,
            scales: f.scales(),
        }
    }

    /// Terms the dealer shares (all but `r^1`, which is the mask).
    fn dealt(&self) -> usize {
        self.terms.iter().filter(|t| **t != Term::Pow(1)).count()
    }

    /// Group bits opened with the piece bits (only when there are two or more scales).
    fn group_bits(&self) -> usize {
        if self.scales.len() >= 2 {
            self.scales.len()
        } else {
            0
        }
    }
}

/// This party's material for `n` evaluations.
pub struct SmoothMaterial<C: Comparison> {
    layout: Layout,
    mask: Mask,
    /// Shares of each term of the layout (`r^1` is `mask.r`).
    terms: Vec<Vec<Elem>>,
    cmp: C::Material,
    select: Vec<SelectMaterial>,
    trunc_mask: Mask,
    trunc_r63: Vec<Elem>,
    trunc_q: Vec<Vec<Elem>>,
    group_select: Vec<SelectMaterial>,
}

impl<C: Comparison> SmoothMaterial<C> {
    /// This party's shares of the truncation mask's `r63` and first group's `q` (none without polynomials).
    pub(crate) fn trunc_parts(&self) -> impl Iterator<Item = &[Elem]> {
        let has = !self.trunc_q.is_empty();
        [self.trunc_r63.as_slice()]
            .into_iter()
            .chain(self.trunc_q.first().map(Vec::as_slice))
            .filter(move |_| has)
    }
}

/// The dealer's values of a term for masks `r`.
fn term_values(t: Term, r: &[Elem], k: u32, slopes: &[(i128, u32)]) -> Vec<Elem> {
    let low = |x: &Elem| x & (u64::MAX >> 1);
    let pow = |v: Elem, i: usize| (0..i).fold(1 as Elem, |a, _| a.wrapping_mul(v));
    let q = |x: &Elem, plus: bool| {
        let unit = (1u64 << (63 - k)).wrapping_mul(x >> 63);
        let q = low(x) >> k;
        if plus {
            q.wrapping_sub(unit)
        } else {
            q.wrapping_add(unit)
        }
    };
    r.iter()
        .map(|x| match t {
            Term::Pow(i) => pow(*x, i),
            Term::QPlus(i) => pow(q(x, true), i),
            Term::QMinus(i) => pow(q(x, false), i),
            Term::R63 => x >> 63,
            Term::Frac(s) => {
                let (s, e) = slopes[s];
                ((s * low(x) as i128) >> e) as Elem
            }
        })
        .collect()
}

/// Dealer: material for `n` evaluations of `f` on inputs `k` bits above its input scale.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, f: &Piecewise, k: u32) {
    deal_parts(cmp, d, n, f, k);
}

/// [`deal`], returning the truncation mask's `(r63, q)` values of the single
/// scale group (for the symmetric protocol's product with the sign).
pub(crate) fn deal_parts<C: Comparison>(
    cmp: &C,
    d: &mut Dealer,
    n: usize,
    f: &Piecewise,
    k: u32,
) -> Option<(Vec<Elem>, Vec<Elem>)> {
    let layout = Layout::new(f, k);
    let r = mask::deal(d, n);
    let values: Vec<Vec<Elem>> = layout
        .terms
        .iter()
        .map(|t| term_values(*t, &r, k, &layout.slopes))
        .collect();
    for (t, v) in layout.terms.iter().zip(&values) {
        if *t != Term::Pow(1) {
            d.share_arith(v);
        }
    }
    cmp.deal(d, &r, f.breakpoints.len());
    for pt in &layout.piece_terms {
        let refs: Vec<&[Elem]> = pt.iter().map(|i| values[*i].as_slice()).collect();
        select::deal(d, n, &refs);
    }
    if layout.scales.is_empty() {
        return None;
    }
    let tr = mask::deal(d, n);
    let r63: Vec<Elem> = tr.iter().map(|x| x >> 63).collect();
    d.share_arith(&r63);
    let qs: Vec<Vec<Elem>> = layout
        .scales
        .iter()
        .map(|s| {
            let q = mask::trunc_values(&tr, s - f.out_frac_bits).1;
            d.share_arith(&q);
            q
        })
        .collect();
    if layout.group_bits() > 0 {
        for q in &qs {
            select::deal(d, n, &[&r63, q]);
        }
    }
    Some((r63, qs.into_iter().next().unwrap_or_default()))
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    n: usize,
    f: &Piecewise,
    k: u32,
) -> SmoothMaterial<C> {
    let layout = Layout::new(f, k);
    let mask = mask::take(p, n);
    let terms = layout
        .terms
        .iter()
        .map(|t| {
            if *t == Term::Pow(1) {
                mask.r.clone()
            } else {
                p.share_arith(n)
            }
        })
        .collect();
    let cmp_mat = cmp.take(p, n, f.breakpoints.len());
    let select = layout
        .piece_terms
        .iter()
        .map(|pt| select::take(p, n, pt.len()))
        .collect();
    let (trunc_mask, trunc_r63, trunc_q) = if layout.scales.is_empty() {
        (Mask { r: vec![] }, vec![], vec![])
    } else {
        let m = mask::take(p, n);
        let r63 = p.share_arith(n);
        let q = layout.scales.iter().map(|_| p.share_arith(n)).collect();
        (m, r63, q)
    };
    let group_select = (0..layout.group_bits())
        .map(|_| select::take(p, n, 2))
        .collect();
    SmoothMaterial {
        layout,
        mask,
        terms,
        cmp: cmp_mat,
        select,
        trunc_mask,
        trunc_r63,
        trunc_q,
        group_select,
    }
}

/// What the parties know after the opening: `c`, and per element the top bit
/// of `c + 2^62` and the truncated value's public part `K` (when `k > 0`).
pub(crate) struct Opened {
    pub(crate) c: Vec<Elem>,
    pub(crate) top: Vec<bool>,
    pub(crate) konst: Vec<Elem>,
}

impl Opened {
    pub(crate) fn new(c: Vec<Elem>, k: u32) -> Self {
        let top = c
            .iter()
            .map(|x| x.wrapping_add(OFFSET) >> 63 == 1)
            .collect();
        let konst = if k > 0 {
            c.iter().map(|x| mask::trunc_form(*x, k).0).collect()
        } else {
            vec![]
        };
        Self { c, top, konst }
    }

    /// `x - center` as `a - B` with public `a` (B = `r`, or the `Q` of the element's top bit).
    pub(crate) fn centered(&self, k: u32, center: i64) -> Vec<Elem> {
        let base = if k > 0 { &self.konst } else { &self.c };
        base.iter()
            .map(|v| v.wrapping_sub(center as Elem))
            .collect()
    }
}

/// Shares of `f(y)` at the table's output scale, for `y` at scale `f + k`
/// (`k` as given to [`deal`] and [`take`]).
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    y: &[Elem],
    f: &Piecewise,
    mat: &SmoothMaterial<C>,
) -> Result<Vec<Elem>, ProtocolError> {
    Ok(eval_parts(cmp, ctx, y, f, mat)?.0)
}

/// [`eval`], also returning the truncation opening (when the table has polynomials).
pub(crate) fn eval_parts<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    y: &[Elem],
    f: &Piecewise,
    mat: &SmoothMaterial<C>,
) -> Result<(Vec<Elem>, Option<Vec<Elem>>), ProtocolError> {
    let lay = &mat.layout;
    let k = lay.k;
    let n = y.len();
    let lead = ctx.lead();
    let opened = Opened::new(mask::open(ctx, y, &mat.mask)?, k);
    let thresholds: Vec<Elem> = f
        .breakpoints
        .iter()
        .map(|t| (*t as Elem).wrapping_shl(k))
        .collect();
    let below = cmp.less_than(ctx, &opened.c, &thresholds, &mat.cmp)?;
    let indicators = indicators(lead, n, &below);
    let groups: Vec<BitVec> = if lay.group_bits() > 0 {
        lay.scales
            .iter()
            .map(|s| {
                let mut g = BitVec::zeros(n);
                for (p, b) in f.pieces.iter().zip(&indicators) {
                    if !p.coeffs.is_empty() && p.scale == *s {
                        g.xor_assign(b);
                    }
                }
                g
            })
            .collect()
    } else {
        vec![]
    };
    let mut masked: Vec<BitVec> = indicators
        .iter()
        .zip(&mat.select)
        .map(|(b, s)| select::masked(b, s))
        .collect();
    masked.extend(
        groups
            .iter()
            .zip(&mat.group_select)
            .map(|(b, s)| select::masked(b, s)),
    );
    let refs: Vec<&BitVec> = masked.iter().collect();
    let e = open_bits(ctx.ch, &refs)?;
    let mut out = vec![0 as Elem; n];
    let mut sum = vec![0 as Elem; n];
    for (j, piece) in f.pieces.iter().enumerate() {
        let shares: Vec<&[Elem]> = lay.piece_terms[j]
            .iter()
            .map(|t| mat.terms[*t].as_slice())
            .collect();
        if piece.slope != 0 || piece.offset != 0 {
            let form = affine_form(piece, lay, &opened, &lay.piece_terms[j], &shares);
            cryptmed_ring::add_assign(
                &mut out,
                &select::finish(lead, &e[j], &form, &mat.select[j]),
            );
        }
        if !piece.coeffs.is_empty() {
            let form = poly_form(piece, lay, &opened, &lay.piece_terms[j], &shares);
            cryptmed_ring::add_assign(
                &mut sum,
                &select::finish(lead, &e[j], &form, &mat.select[j]),
            );
        }
    }
    if lay.scales.is_empty() {
        return Ok((out, None));
    }
    {
        let c2 = mask::open(ctx, &sum, &mat.trunc_mask)?;
        let pieces = f.pieces.len();
        for (g, s) in lay.scales.iter().enumerate() {
            let form = trunc_form(&c2, s - f.out_frac_bits, &mat.trunc_r63, &mat.trunc_q[g]);
            let part = if lay.group_bits() > 0 {
                select::finish(lead, &e[pieces + g], &form, &mat.group_select[g])
            } else {
                select::local(lead, &form)
            };
            cryptmed_ring::add_assign(&mut out, &part);
        }
        Ok((out, Some(c2)))
    }
}

/// XOR shares of the one-hot piece indicators from the comparisons `[x < t_j]`.
pub(crate) fn indicators(lead: bool, n: usize, below: &[BitVec]) -> Vec<BitVec> {
    let m = below.len();
    let one = || {
        if lead {
            BitVec::ones(n)
        } else {
            BitVec::zeros(n)
        }
    };
    (0..=m)
        .map(|j| {
            if m == 0 {
                one()
            } else if j == 0 {
                below[0].clone()
            } else if j == m {
                below[m - 1].xor(&one())
            } else {
                below[j].xor(&below[j - 1])
            }
        })
        .collect()
}

/// `c2 >> s` (the truncation from one opening) as a linear form in the mask's `r63` and `q`.
pub(crate) fn trunc_form<'a>(c2: &[Elem], s: u32, r63: &'a [Elem], q: &'a [Elem]) -> Form<'a> {
    let (konst, alpha): (Vec<Elem>, Vec<Elem>) = c2.iter().map(|c| mask::trunc_form(*c, s)).unzip();
    Form {
        constant: konst,
        terms: vec![(alpha, r63), (vec![Elem::MAX; c2.len()], q)],
    }
}

/// A form over a piece's terms: its public constant and one coefficient vector per term.
fn dense_form<'a>(constant: Vec<Elem>, coeffs: Vec<Vec<Elem>>, shares: &[&'a [Elem]]) -> Form<'a> {
    Form {
        constant,
        terms: coeffs.into_iter().zip(shares.iter().copied()).collect(),
    }
}

/// Index in the piece's term list of a layout term.
fn slot(lay: &Layout, piece_terms: &[usize], t: Term) -> Option<usize> {
    let i = lay.terms.iter().position(|x| *x == t)?;
    piece_terms.iter().position(|x| *x == i)
}

/// Puts per-element coefficients of `B^i` (the input's dealer part) into the piece's term slots.
fn place_powers(
    lay: &Layout,
    piece_terms: &[usize],
    opened: &Opened,
    alphas: &[Vec<Elem>],
    coeffs: &mut [Vec<Elem>],
) {
    for (i, alpha) in alphas.iter().enumerate() {
        let i = i + 1;
        if lay.k == 0 {
            if let Some(s) = slot(lay, piece_terms, Term::Pow(i)) {
                coeffs[s].clone_from(alpha);
            }
        } else {
            let (p, m) = (
                slot(lay, piece_terms, Term::QPlus(i)),
                slot(lay, piece_terms, Term::QMinus(i)),
            );
            if let (Some(p), Some(m)) = (p, m) {
                for (e, a) in alpha.iter().enumerate() {
                    let s = if opened.top[e] { m } else { p };
                    coeffs[s][e] = *a;
                }
            }
        }
    }
}

/// A piece's affine part (slope and offset) as a linear form in its terms.
fn affine_form<'a>(
    piece: &Piece,
    lay: &Layout,
    opened: &Opened,
    piece_terms: &[usize],
    shares: &[&'a [Elem]],
) -> Form<'a> {
    let n = opened.c.len();
    let mut coeffs = vec![vec![0 as Elem; n]; piece_terms.len()];
    let offset = piece.offset as Elem;
    let constant = if piece.fractional() {
        let (s, e) = piece.scaled_slope(lay.k);
        let big = (s << (63 - e)) as Elem;
        let half = (s << (62 - e)) as Elem;
        let r63 = slot(lay, piece_terms, Term::R63);
        let frac = lay
            .slopes
            .iter()
            .position(|x| *x == (s, e))
            .and_then(|i| slot(lay, piece_terms, Term::Frac(i)));
        opened
            .c
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ct = c.wrapping_add(OFFSET);
                let top = ct >> 63;
                let low = (ct & (u64::MAX >> 1)) as i128;
                if let Some(r) = r63 {
                    coeffs[r][i] = big.wrapping_mul(1u64.wrapping_sub(2 * top));
                }
                if let Some(q) = frac {
                    coeffs[q][i] = Elem::MAX;
                }
                (((s * low) >> e) as Elem)
                    .wrapping_add(big.wrapping_mul(top))
                    .wrapping_sub(half)
                    .wrapping_add(offset)
            })
            .collect()
    } else {
        let slope = piece.slope as Elem;
        let a = opened.centered(lay.k, 0);
        if slope != 0 {
            let minus: Vec<Elem> = vec![slope.wrapping_neg(); n];
            place_powers(lay, piece_terms, opened, &[minus], &mut coeffs);
        }
        a.iter()
            .map(|v| slope.wrapping_mul(*v).wrapping_add(offset))
            .collect()
    };
    dense_form(constant, coeffs, shares)
}

fn binom(n: usize, k: usize) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) as u64 / (i + 1) as u64)
}

/// A piece's polynomial part as a linear form in the powers of the input's
/// dealer part `B` (`x - center = a - B`):
/// `alpha_i = (-1)^i sum_{k >= i} coeffs[k] binom(k, i) a^(k-i)`.
fn poly_form<'a>(
    piece: &Piece,
    lay: &Layout,
    opened: &Opened,
    piece_terms: &[usize],
    shares: &[&'a [Elem]],
) -> Form<'a> {
    let n = opened.c.len();
    let deg = piece.degree();
    let a = opened.centered(lay.k, piece.center);
    let mut alphas = vec![vec![0 as Elem; n]; deg + 1];
    for (e, ae) in a.iter().enumerate() {
        let mut apow = vec![1 as Elem; deg + 1];
        for k in 1..=deg {
            apow[k] = apow[k - 1].wrapping_mul(*ae);
        }
        for (i, alpha) in alphas.iter_mut().enumerate() {
            let mut v: Elem = 0;
            for (k, ck) in piece.coeffs.iter().enumerate().skip(i) {
                v = v.wrapping_add(
                    (*ck as Elem)
                        .wrapping_mul(binom(k, i))
                        .wrapping_mul(apow[k - i]),
                );
            }
            alpha[e] = if i % 2 == 1 { v.wrapping_neg() } else { v };
        }
    }
    let constant = alphas.remove(0);
    let mut coeffs = vec![vec![0 as Elem; n]; piece_terms.len()];
    place_powers(lay, piece_terms, opened, &alphas, &mut coeffs);
    dense_form(constant, coeffs, shares)
}

/// The communication of [`eval`] on `n` elements.
pub fn trace<C: Comparison>(cmp: &C, n: usize, f: &Piecewise, k: u32) -> Trace {
    let lay = Layout::new(f, k);
    let mut t = mask::open_trace(n).then(cmp.trace(n, f.breakpoints.len()));
    t.append(Trace::exchange(
        ((f.pieces.len() + lay.group_bits()) * bytes_for(n)) as u64,
    ));
    if !lay.scales.is_empty() {
        t.append(mask::open_trace(n));
    }
    t
}

/// Closed-form online cost of [`eval`] (module docs): opening, `m`
/// comparisons, one exchange of `P + G` bit vectors, one truncation opening.
pub fn cost<C: Comparison>(cmp: &C, n: usize, f: &Piecewise, k: u32) -> Cost {
    let lay = Layout::new(f, k);
    let bits = (f.pieces.len() + lay.group_bits()) as u64;
    let c = mask::open_cost(n)
        .then(cmp.cost(n, f.breakpoints.len()))
        .then(Cost::exchange(bits * bit_bytes(n)));
    if lay.scales.is_empty() {
        c
    } else {
        c.then(mask::open_cost(n))
    }
}

/// Closed-form dealer bytes of [`deal`] (corrections to the client; module docs).
pub fn offline_bytes<C: Comparison>(cmp: &C, n: usize, f: &Piecewise, k: u32) -> u64 {
    let lay = Layout::new(f, k);
    let e = 8 * n as u64;
    let selects: u64 = lay
        .piece_terms
        .iter()
        .map(|t| select::offline_bytes(n, t.len()))
        .sum();
    let trunc = if lay.scales.is_empty() {
        0
    } else {
        e * (1 + lay.scales.len() as u64)
    };
    e * lay.dealt() as u64
        + cmp.offline_bytes(n, f.breakpoints.len())
        + selects
        + trunc
        + lay.group_bits() as u64 * select::offline_bytes(n, 2)
}
