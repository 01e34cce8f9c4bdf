//! Smooth functions as piecewise polynomials, evaluated exactly in the ring.
//!
//! A [`Piecewise`] function has public breakpoints `t_1 < ... < t_m` (fixed
//! point at the input scale `f`) and `m + 1` pieces: piece 0 for `x < t_1`,
//! piece `j` for `t_j <= x < t_{j+1}`, piece `m` for `x >= t_m`. A piece is
//! either a polynomial `sum_k a_k (x - center)^k` with `a_k` stored at scale
//! `S - k f` (the sum is at the table's output scale `S`), or an affine tail
//! `slope * x + offset` (integer slope, offset at scale `f`) that makes the
//! function right on the whole input range.
//!
//! Protocol (input at scale `f`):
//! 1. open `c = x + r` (1 round, 8 bytes each way per element);
//! 2. all `m` comparisons `[x < t_j]` from that one opening (4 rounds with
//!    [`Ppa`](crate::Ppa), about 11 bytes per breakpoint per element);
//! 3. one-hot piece indicators, locally: `I_0 = b_1`, `I_j = b_j ^ b_{j+1}`,
//!    `I_m = !b_m` (the comparisons are monotone in `t`);
//! 4. `I_j * P_j(x)` for every piece with one opened bit each, in one round:
//!    `P_j(c - center - r)` expands to `sum_i alpha_i(c) r^i` with public
//!    `alpha`, a linear form in the dealer-shared powers `r^i` (see
//!    [`select`](crate::select)); the ring arithmetic is exact mod 2^64, and
//!    the garbage a far-away piece would produce is multiplied by an exact 0;
//! 5. one truncation of the polynomial part from `S` to `f` bits (1 round);
//!    the affine tails are already at scale `f` and are added after it.
//!
//! Online per element: 7 rounds, `2 * (8 + 5.5 m + (m + 1)/8 + 8)` bytes.
//! The result equals the fixed-point twin (`cryptmed-approx`) or is one unit
//! above it (the truncation's round-up).

use cryptmed_prep::{Dealer, PartyPrep};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::BitVec;
use cryptmed_share::open::open_bits;

use crate::compare::Comparison;
use crate::cost::Trace;
use crate::mask::{self, Mask};
use crate::select::{self, Form, SelectMaterial};
use crate::{Ctx, ProtocolError, trunc};

/// One piece of a piecewise function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// `sum_k coeffs[k] * (x - center)^k` at the table's output scale.
    Poly {
        /// Expansion point, at the input scale.
        center: i64,
        /// `coeffs[k]` at scale `out_scale - k * f`.
        coeffs: Vec<i64>,
    },
    /// `slope * x + offset` at the input scale.
    Affine {
        /// Integer slope (0 for a constant tail, 1 for the identity).
        slope: i64,
        /// Offset at the input scale.
        offset: i64,
    },
}

/// A piecewise function in the form the protocol evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piecewise {
    /// Ascending breakpoints at the input scale.
    pub breakpoints: Vec<i64>,
    /// `breakpoints.len() + 1` pieces.
    pub pieces: Vec<Piece>,
    /// Fractional bits of the polynomial pieces' sums.
    pub out_scale: u32,
    /// Fractional bits of the input and output.
    pub frac_bits: u32,
}

impl Piecewise {
    fn degree(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Poly { coeffs, .. } => coeffs.len().saturating_sub(1),
                Piece::Affine { slope, .. } => usize::from(*slope != 0),
            })
            .max()
            .unwrap_or(0)
    }

    fn has_poly(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Poly { .. }))
    }

    /// Dealer terms (`r^1 .. r^deg`) a piece's form uses.
    fn terms(piece: &Piece) -> usize {
        match piece {
            Piece::Poly { coeffs, .. } => coeffs.len().saturating_sub(1),
            Piece::Affine { slope, .. } => usize::from(*slope != 0),
        }
    }

    /// The fixed-point twin: exactly what the protocol computes, minus the truncation's round-up.
    pub fn eval_fixed(&self, x: i64) -> i64 {
        let j = self.breakpoints.iter().take_while(|t| x >= **t).count();
        match &self.pieces[j] {
            Piece::Affine { slope, offset } => slope.wrapping_mul(x).wrapping_add(*offset),
            Piece::Poly { center, coeffs } => {
                let d = x.wrapping_sub(*center);
                let (mut acc, mut pw) = (0i64, 1i64);
                for c in coeffs {
                    acc = acc.wrapping_add(c.wrapping_mul(pw));
                    pw = pw.wrapping_mul(d);
                }
                acc >> (self.out_scale - self.frac_bits)
            }
        }
    }
}

fn binom(n: usize, k: usize) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) as u64 / (i + 1) as u64)
}

/// This party's material for `n` evaluations.
pub struct SmoothMaterial<C: Comparison> {
    mask: Mask,
    powers: Vec<Vec<Elem>>,
    cmp: C::Material,
    select: Vec<SelectMaterial>,
    trunc: Option<trunc::TruncMaterial>,
}

/// Dealer: material for `n` evaluations of `f`.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, f: &Piecewise) {
    let r = mask::deal(d, n);
    let deg = f.degree();
    // powers[i] = r^(i+1); r itself is the mask (already shared), higher powers are dealt.
    let mut powers = vec![r.clone()];
    for _ in 1..deg {
        let next: Vec<Elem> = powers
            .last()
            .map(|p| p.iter().zip(&r).map(|(a, b)| a.wrapping_mul(*b)).collect())
            .unwrap_or_default();
        d.share_arith(&next);
        powers.push(next);
    }
    cmp.deal(d, &r, f.breakpoints.len());
    for piece in &f.pieces {
        let refs: Vec<&[Elem]> = powers
            .iter()
            .take(Piecewise::terms(piece))
            .map(Vec::as_slice)
            .collect();
        select::deal(d, n, &refs);
    }
    if f.has_poly() {
        trunc::deal(d, n, f.out_scale - f.frac_bits);
    }
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut PartyPrep,
    n: usize,
    f: &Piecewise,
) -> SmoothMaterial<C> {
    let mask = mask::take(p, n);
    let mut powers = vec![mask.r.clone()];
    for _ in 1..f.degree() {
        powers.push(p.share_arith(n));
    }
    let cmp_mat = cmp.take(p, n, f.breakpoints.len());
    let select = f
        .pieces
        .iter()
        .map(|piece| select::take(p, n, Piecewise::terms(piece)))
        .collect();
    let trunc = f.has_poly().then(|| trunc::take(p, n));
    SmoothMaterial {
        mask,
        powers,
        cmp: cmp_mat,
        select,
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
    let indicators: Vec<BitVec> = (0..=m)
        .map(|j| match (j, m) {
            (_, 0) => {
                if lead {
                    BitVec::ones(n)
                } else {
                    BitVec::zeros(n)
                }
            }
            (0, _) => below[0].clone(),
            (j, m) if j == m => {
                if lead {
                    below[m - 1].not()
                } else {
                    below[m - 1].clone()
                }
            }
            (j, _) => below[j].xor(&below[j - 1]),
        })
        .collect();
    let masked: Vec<BitVec> = indicators
        .iter()
        .zip(&mat.select)
        .map(|(b, s)| select::masked(b, s))
        .collect();
    let refs: Vec<&BitVec> = masked.iter().collect();
    let opened = open_bits(ctx.ch, &refs)?;
    let mut poly = vec![0 as Elem; n];
    let mut tails = vec![0 as Elem; n];
    for ((piece, e), sel) in f.pieces.iter().zip(&opened).zip(&mat.select) {
        let form = piece_form(piece, &c, &mat.powers);
        let part = select::finish(lead, e, &form, sel);
        let acc = if matches!(piece, Piece::Poly { .. }) {
            &mut poly
        } else {
            &mut tails
        };
        cryptmed_ring::add_assign(acc, &part);
    }
    let mut out = match &mat.trunc {
        Some(t) => trunc::eval(ctx, &poly, f.out_scale - f.frac_bits, t)?,
        None => poly,
    };
    cryptmed_ring::add_assign(&mut out, &tails);
    Ok(out)
}

/// A piece's value as a linear form in the powers of the mask, given `c = x + r`.
fn piece_form<'a>(piece: &Piece, c: &[Elem], powers: &'a [Vec<Elem>]) -> Form<'a> {
    match piece {
        Piece::Affine { slope, offset } => {
            let s = *slope as Elem;
            let constant = c
                .iter()
                .map(|ci| s.wrapping_mul(*ci).wrapping_add(*offset as Elem))
                .collect();
            let terms = if *slope != 0 {
                vec![(vec![s.wrapping_neg(); c.len()], powers[0].as_slice())]
            } else {
                vec![]
            };
            Form { constant, terms }
        }
        Piece::Poly { center, coeffs } => {
            let deg = coeffs.len().saturating_sub(1);
            // alpha_i = (-1)^i sum_{k >= i} coeffs[k] binom(k, i) a^(k-i), with a = c - center.
            let mut alphas = vec![vec![0 as Elem; c.len()]; deg + 1];
            for (e, ci) in c.iter().enumerate() {
                let a = ci.wrapping_sub(*center as Elem);
                let mut apow = vec![1 as Elem; deg + 1];
                for k in 1..=deg {
                    apow[k] = apow[k - 1].wrapping_mul(a);
                }
                for (i, alpha) in alphas.iter_mut().enumerate() {
                    let mut v: Elem = 0;
                    for (k, ck) in coeffs.iter().enumerate().skip(i) {
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
    }
}

/// The communication of [`eval`] on `n` elements.
pub fn trace<C: Comparison>(cmp: &C, n: usize, f: &Piecewise) -> Trace {
    let mut t = Trace::exchange(8 * n as u64).then(cmp.trace(n, f.breakpoints.len()));
    t.append(Trace::exchange(
        (f.pieces.len() * cryptmed_ring::bits::bytes_for(n)) as u64,
    ));
    if f.has_poly() {
        t.append(trunc::trace(n));
    }
    t
}
