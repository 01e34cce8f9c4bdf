//! ReLU with the truncation fused into the comparison's opening.
//!
//! Input: shares of `y` at some scale; output: shares of `ReLU(y >> k)`
//! (`k = 0`: no truncation). Steps:
//! 1. open `c = y + r` (1 round, 8 bytes each way per element);
//! 2. `b = [y < 0]` by the comparison on `c` (4 rounds with [`Ppa`](crate::Ppa));
//! 3. `(y >> k) * !b` by [`select`](crate::select): `y >> k` is the linear form
//!    `K + alpha r63 - q` of [`mask`](crate::mask) (or `c - r` when `k = 0`),
//!    so one opened bit suffices (1 round).
//!
//! Online with `Ppa` for `n` elements ([`cost`]): 6 rounds and
//! `16 n + 90 ceil(n/8)` bytes both ways (`2 * (8 + 5.5 + 0.125)` = 27.25
//! bytes per element when `n` is a multiple of 8). Dealer
//! ([`offline_bytes`]): `40 n + 262 ceil(n/8)` with truncation (72.75 bytes
//! per element), `16 n + 262 ceil(n/8)` without (48.75).
//! Exact to one unit in the last place (the truncation rounds up by at most one).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

use crate::compare::Comparison;
use crate::cost::{Cost, Trace};
use crate::mask::{self, Mask, TruncParts};
use crate::select::{self, Form, SelectMaterial};
use crate::{Ctx, MINUS_ONE, ProtocolError};

/// This party's material for one ReLU layer.
pub struct ReluMaterial<C: Comparison> {
    mask: Mask,
    trunc: Option<TruncParts>,
    cmp: C::Material,
    select: SelectMaterial,
}

/// Dealer: material for `n` ReLUs with truncation by `k` bits.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, k: u32) {
    let r = mask::deal(d, n);
    let trunc = (k > 0).then(|| mask::deal_trunc(d, &r, k));
    cmp.deal(d, &r, 1);
    match &trunc {
        Some((r63, q)) => select::deal(d, n, &[r63, q]),
        None => select::deal(d, n, &[&r]),
    }
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(cmp: &C, p: &mut dyn PrepSource, n: usize, k: u32) -> ReluMaterial<C> {
    let mask = mask::take(p, n);
    let trunc = (k > 0).then(|| mask::take_trunc(p, n));
    let cmp_mat = cmp.take(p, n, 1);
    let select = select::take(p, n, if k > 0 { 2 } else { 1 });
    ReluMaterial {
        mask,
        trunc,
        cmp: cmp_mat,
        select,
    }
}

/// Shares of `ReLU(y >> k)`.
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    y: &[Elem],
    k: u32,
    mat: &ReluMaterial<C>,
) -> Result<Vec<Elem>, ProtocolError> {
    Ok(eval_with_input(cmp, ctx, y, k, mat)?.0)
}

/// Shares of `ReLU(y >> k)` and of `y >> k` itself (free from the same opening).
pub fn eval_with_input<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    y: &[Elem],
    k: u32,
    mat: &ReluMaterial<C>,
) -> Result<(Vec<Elem>, Vec<Elem>), ProtocolError> {
    let c = mask::open(ctx, y, &mat.mask)?;
    let neg = cmp.less_than(ctx, &c, &[0], &mat.cmp)?.remove(0);
    let pos = if ctx.lead() { neg.not() } else { neg };
    let form = value_form(&c, k, &mat.mask, mat.trunc.as_ref());
    let relu = select::select(ctx, &pos, &form, &mat.select)?;
    let value = select::local(ctx.lead(), &form);
    Ok((relu, value))
}

/// The value `y >> k` (or `y` when `k = 0`) as a linear form in dealer terms, given `c = y + r`.
pub(crate) fn value_form<'a>(
    c: &[Elem],
    k: u32,
    mask: &'a Mask,
    trunc: Option<&'a TruncParts>,
) -> Form<'a> {
    match trunc {
        Some(t) => {
            let (konst, alpha): (Vec<Elem>, Vec<Elem>) =
                c.iter().map(|x| mask::trunc_form(*x, k)).unzip();
            Form {
                constant: konst,
                terms: vec![(alpha, &t.r63), (vec![MINUS_ONE; c.len()], &t.q)],
            }
        }
        None => Form {
            constant: c.to_vec(),
            terms: vec![(vec![MINUS_ONE; c.len()], &mask.r)],
        },
    }
}

/// The communication of [`eval`] on `n` elements.
pub fn trace<C: Comparison>(cmp: &C, n: usize) -> Trace {
    mask::open_trace(n)
        .then(cmp.trace(n, 1))
        .then(select::trace(n))
}

/// Closed-form cost of [`eval`]: opening, one comparison, one select.
pub fn cost<C: Comparison>(cmp: &C, n: usize) -> Cost {
    mask::open_cost(n)
        .then(cmp.cost(n, 1))
        .then(select::cost(n))
}

/// Closed-form dealer bytes of [`deal`]: the truncation parts (`16 n`, when
/// `k > 0`), the comparison, and a select over 2 terms (1 when `k = 0`).
pub fn offline_bytes<C: Comparison>(cmp: &C, n: usize, k: u32) -> u64 {
    let (trunc, terms) = if k > 0 {
        (mask::trunc_offline_bytes(n), 2)
    } else {
        (0, 1)
    };
    trunc + cmp.offline_bytes(n, 1) + select::offline_bytes(n, terms)
}
