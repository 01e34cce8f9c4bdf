//! ReLU with the truncation fused into the comparison's opening.
//!
//! Input: shares of `y` at some scale; output: shares of `ReLU(y >> k)`
//! (`k = 0`: no truncation). Steps:
//! 1. open `c = y + r` (1 round, 8 bytes each way per element);
//! 2. `[y >= 0] * (y >> k)` by the comparison's selection
//!    ([`Selection::at_least`]): `y >> k` is the linear form `K + alpha r63 -
//!    q` of [`mask`](crate::mask) (or `c - r` when `k = 0`), a form in the
//!    dealer terms `(r63, q)` (or `r`).
//!
//! With [`Ppa`](crate::Ppa) step 2 is the comparison (4 rounds) and one
//! opened bit (1 round, see [`select`](crate::select)): for `n` elements
//! ([`cost`]) 6 rounds and `16 n + 90 ceil(n/8)` bytes both ways (`2 * (8 +
//! 5.5 + 0.125)` = 27.25 bytes per element when `n` is a multiple of 8);
//! dealer ([`offline_bytes`]) `40 n + 262 ceil(n/8)` with truncation (72.75
//! bytes per element), `16 n + 262 ceil(n/8)` without (48.75).
//!
//! With [`Fss`](crate::Fss) step 2 is local: **1 round and 16 bytes** per
//! element; dealer: a DCF key with a 3-element payload (2 without
//! truncation) to both parties, `2 * 2544` bytes (`2 * 2032`), plus the
//! client's corrections (the truncation parts, `r63` and `r63` times each
//! term: 16 + 24 bytes, or 16): 5,128 bytes per element with truncation,
//! 4,080 without.
//!
//! Exact to one unit in the last place (the truncation rounds up by at most one).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

use crate::compare::{self, Comparison, Selection};
use crate::cost::{Cost, Trace};
use crate::mask::{self, Mask, TruncParts};
use crate::select::{self, Form};
use crate::{Ctx, MINUS_ONE, ProtocolError};

/// This party's material for one ReLU layer.
pub struct ReluMaterial<C: Comparison> {
    mask: Mask,
    trunc: Option<TruncParts>,
    select: C::SelectMaterial,
}

/// The selection of a ReLU (or a max-pooling level): `[y >= 0]` times the
/// value's form, over its 2 terms `(r63, q)` with truncation, 1 (`r`) without.
pub(crate) fn selection(k: u32) -> Selection {
    Selection::at_least(if k > 0 { 2 } else { 1 })
}

/// Dealer: material for `n` ReLUs with truncation by `k` bits.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, k: u32) {
    let r = mask::deal(d, n);
    match (k > 0).then(|| mask::deal_trunc(d, &r, k)) {
        Some((r63, q)) => cmp.deal_select(d, &r, &selection(k), &[&r63, &q]),
        None => cmp.deal_select(d, &r, &selection(k), &[&r]),
    }
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(cmp: &C, p: &mut dyn PrepSource, n: usize, k: u32) -> ReluMaterial<C> {
    let mask = mask::take(p, n);
    let trunc = (k > 0).then(|| mask::take_trunc(p, n));
    let select = cmp.take_select(p, n, &selection(k));
    ReluMaterial {
        mask,
        trunc,
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
    let sel = selection(k);
    let chosen = compare::select(cmp, ctx, &c, &[0], &sel, &mat.select)?;
    let form = value_form(&c, k, &mat.mask, mat.trunc.as_ref());
    Ok((chosen.times(0, &form), select::local(ctx.lead(), &form)))
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
    mask::open_trace(n).then(cmp.select_trace(n, &selection(0)))
}

/// Closed-form cost of [`eval`]: the opening and the selection.
pub fn cost<C: Comparison>(cmp: &C, n: usize) -> Cost {
    mask::open_cost(n).then(cmp.select_cost(n, &selection(0)))
}

/// Closed-form dealer bytes of [`deal`]: the truncation parts (`16 n`, when
/// `k > 0`) and the selection over 2 terms (1 when `k = 0`).
pub fn offline_bytes<C: Comparison>(cmp: &C, n: usize, k: u32) -> u64 {
    let trunc = if k > 0 {
        mask::trunc_offline_bytes(n)
    } else {
        0
    };
    trunc + cmp.select_offline_bytes(n, &selection(k))
}
