//! Smooth functions as piecewise polynomials, evaluated exactly in the ring.
//!
//! The table ([`Piecewise`], from `cryptmed-approx`) has public breakpoints
//! and, per piece, an exact affine part `slope * x + offset` (integer slope)
//! plus a polynomial `sum_k a_k (x - center)^k` at the piece's own scale.
//!
//! Protocol (input at scale `f`):
//! 1. open `c = x + r` (1 round, 8 bytes each way per element);
//! 2. all `m` comparisons `[x < t_j]` from that one opening (4 rounds with
//!    [`Ppa`](crate::Ppa), about 11 bytes per breakpoint per element);
//! 3. one-hot piece indicators, locally: `I_0 = b_1`, `I_j = b_j ^ b_{j+1}`,
//!    `I_m = !b_m` (the comparisons are monotone in `t`);
//! 4. `I_j * piece_j(x)` for every piece with one opened bit each, in one
//!    round: `piece_j(c - r)` expands to `sum_i alpha_i(c) r^i` with public
//!    `alpha`, a linear form in the dealer-shared powers `r^i` (see
//!    [`select`](crate::select)); ring arithmetic is exact mod 2^64, and the
//!    garbage a far-away piece would produce is multiplied by an exact 0;
//! 5. one truncation per distinct polynomial scale, all in one exchange
//!    (1 round); the affine parts are already at scale `f`.
//!
//! Online per element: 7 rounds, `2 * (8 + 5.5 m + (m + 1)/8 + 8 g)` bytes
//! for `m` breakpoints and `g` scales. The result equals the fixed-point twin
//! ([`Piecewise::eval_fixed`]) or is one unit above it (truncation round-up).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_share::open::open_bits;

pub use cryptmed_approx::{Piece, Piecewise};

use crate::compare::Comparison;
use crate::cost::Trace;
use crate::mask::{self, Mask, TruncParts};
use crate::select::{self, Form, SelectMaterial};
use crate::{Ctx, ProtocolError};

/// Dealer terms (`r^1 .. r^k`) a piece's forms use.
fn terms(piece: &Piece) -> usize {
    piece.degree().max(usize::from(piece.slope != 0))
}

fn max_terms(f: &Piecewise) -> usize {
    f.pieces.iter().map(terms).max().unwrap_or(0)
}

/// This party's material for `n` evaluations.
pub struct SmoothMaterial<C: Comparison> {
    mask: Mask,
    powers: Vec<Vec<Elem>>,
    cmp: C::Material,
    select: Vec<SelectMaterial>,
    trunc_mask: Mask,
    trunc: Vec<TruncParts>,
}

/// Dealer: material for `n` evaluations of `f`.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, f: &Piecewise) {
    let r = mask::deal(d, n);
    // powers[i] = r^(i+1); r itself is the mask (already shared), higher powers are dealt.
    let mut powers = vec![r.clone()];
    for _ in 1..max_terms(f) {
        let next: Vec<Elem> = powers[powers.len() - 1]
            .iter()
            .zip(&r)
            .map(|(a, b)| a.wrapping_mul(*b))
            .collect();
        d.share_arith(&next);
        powers.push(next);
    }
    cmp.deal(d, &r, f.breakpoints.len());
    for piece in &f.pieces {
        let refs: Vec<&[Elem]> = powers
            .iter()
            .take(terms(piece))
            .map(Vec::as_slice)
            .collect();
        select::deal(d, n, &refs);
    }
    let scales = f.scales();
    let tr = mask::deal(d, n * scales.len());
    for (g, s) in scales.iter().enumerate() {
        mask::deal_trunc(d, &tr[g * n..(g + 1) * n], s - f.frac_bits);
    }
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    n: usize,
    f: &Piecewise,
) -> SmoothMaterial<C> {
    let mask = mask::take(p, n);
    let mut powers = vec![mask.r.clone()];
    for _ in 1..max_terms(f) {
        powers.push(p.share_arith(n));
    }
    let cmp_mat = cmp.take(p, n, f.breakpoints.len());
    let select = f
        .pieces
        .iter()
        .map(|piece| select::take(p, n, terms(piece)))
        .collect();
    let groups = f.scales().len();
    let trunc_mask = mask::take(p, n * groups);
    let trunc = (0..groups).map(|_| mask::take_trunc(p, n)).collect();
    SmoothMaterial {
        mask,
        powers,
        cmp: cmp_mat,
        select,
        trunc_mask,
        trunc,
    }
}

/// Shares of `f(x)` at scale `f.frac_bits`.
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    f: &Piecewise,
    mat: &SmoothMaterial<C>,
) -> Result<Vec<Elem>, ProtocolError> {
    let n = x.len();
    let lead = ctx.lead();
    let c = mask::open(ctx, x, &mat.mask)?;
    let thresholds: Vec<Elem> = f.breakpoints.iter().map(|t| *t as Elem).collect();
    let below = cmp.less_than(ctx, &c, &thresholds, &mat.cmp)?;
    let m = below.len();
    let constant_one = || {
        if lead {
            BitVec::ones(n)
        } else {
            BitVec::zeros(n)
        }
    };
    let indicators: Vec<BitVec> = (0..=m)
        .map(|j| {
            if m == 0 {
                constant_one()
            } else if j == 0 {
                below[0].clone()
            } else if j == m {
                below[m - 1].xor(&constant_one())
            } else {
                below[j].xor(&below[j - 1])
            }
        })
        .collect();
    let masked: Vec<BitVec> = indicators
        .iter()
        .zip(&mat.select)
        .map(|(b, s)| select::masked(b, s))
        .collect();
    let refs: Vec<&BitVec> = masked.iter().collect();
    let opened = open_bits(ctx.ch, &refs)?;
    let scales = f.scales();
    let mut groups = vec![vec![0 as Elem; n]; scales.len()];
    let mut out = vec![0 as Elem; n];
    for ((piece, e), sel) in f.pieces.iter().zip(&opened).zip(&mat.select) {
        if piece.slope != 0 || piece.offset != 0 {
            cryptmed_ring::add_assign(
                &mut out,
                &select::finish(lead, e, &affine_form(piece, &c, &mat.powers), sel),
            );
        }
        if !piece.coeffs.is_empty() {
            let g = scales.iter().position(|s| *s == piece.scale).unwrap_or(0);
            cryptmed_ring::add_assign(
                &mut groups[g],
                &select::finish(lead, e, &poly_form(piece, &c, &mat.powers), sel),
            );
        }
    }
    if !groups.is_empty() {
        let opened = mask::open(ctx, &groups.concat(), &mat.trunc_mask)?;
        for (g, s) in scales.iter().enumerate() {
            let part = mask::truncated_share(
                lead,
                &opened[g * n..(g + 1) * n],
                s - f.frac_bits,
                &mat.trunc[g],
            );
            cryptmed_ring::add_assign(&mut out, &part);
        }
    }
    Ok(out)
}

/// A piece's affine part `slope * (c - r) + offset` as a linear form.
fn affine_form<'a>(piece: &Piece, c: &[Elem], powers: &'a [Vec<Elem>]) -> Form<'a> {
    let s = piece.slope as Elem;
    let constant = c
        .iter()
        .map(|ci| s.wrapping_mul(*ci).wrapping_add(piece.offset as Elem))
        .collect();
    let terms = if piece.slope != 0 {
        vec![(vec![s.wrapping_neg(); c.len()], powers[0].as_slice())]
    } else {
        vec![]
    };
    Form { constant, terms }
}

fn binom(n: usize, k: usize) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) as u64 / (i + 1) as u64)
}

/// A piece's polynomial part as a linear form in the powers of the mask, given `c = x + r`:
/// `alpha_i = (-1)^i sum_{k >= i} coeffs[k] binom(k, i) a^(k-i)` with `a = c - center`.
fn poly_form<'a>(piece: &Piece, c: &[Elem], powers: &'a [Vec<Elem>]) -> Form<'a> {
    let deg = piece.degree();
    let mut alphas = vec![vec![0 as Elem; c.len()]; deg + 1];
    for (e, ci) in c.iter().enumerate() {
        let a = ci.wrapping_sub(piece.center as Elem);
        let mut apow = vec![1 as Elem; deg + 1];
        for k in 1..=deg {
            apow[k] = apow[k - 1].wrapping_mul(a);
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
    let terms = alphas
        .into_iter()
        .zip(powers)
        .map(|(a, p)| (a, p.as_slice()))
        .collect();
    Form { constant, terms }
}

/// The communication of [`eval`] on `n` elements.
pub fn trace<C: Comparison>(cmp: &C, n: usize, f: &Piecewise) -> Trace {
    let mut t = Trace::exchange(8 * n as u64).then(cmp.trace(n, f.breakpoints.len()));
    t.append(Trace::exchange((f.pieces.len() * bytes_for(n)) as u64));
    let groups = f.scales().len();
    if groups > 0 {
        t.append(Trace::exchange(8 * (n * groups) as u64));
    }
    t
}
