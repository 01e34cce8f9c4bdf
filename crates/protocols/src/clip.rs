//! Clip with constant bounds (ReLU6 is `clip(x, 0, 6)`, hardtanh `clip(x,
//! -1, 1)`), the truncation of the preceding linear layer fused into its
//! opening as in [`relu`](crate::relu).
//!
//! Input: shares of `y` at scale `f + k`; output: shares of `clip(y >> k)` at
//! scale `f`. With `x' = y >> k` (a linear form in dealer terms once `c = y +
//! r` is open, see [`mask`](crate::mask)) and the bits `b_t = [y < t 2^(f+k)]`:
//! `clip = hi + b_hi (x' - hi) - b_lo (x' - lo)` (a missing upper bound
//! drops `hi` and starts from `x'`; a missing lower bound drops its term).
//! Steps:
//! 1. open `c = y + r` (1 round, 8 bytes each way per element);
//! 2. both products `b_t (x' - t)` from that one opening by the comparison's
//!    selection ([`Selection::below`], one selector per bound): with
//!    [`Ppa`](crate::Ppa) both comparisons in the same 4 rounds and one
//!    opened bit per bound in one more round; with [`Fss`](crate::Fss)
//!    locally, one key evaluated at both thresholds.
//!
//! Online for `n` elements and `m` bounds ([`cost`]): with `Ppa` 6 rounds and
//! `16 n + m 88 ceil(n/8) + 2 m ceil(n/8)` bytes both ways (ReLU6: 16 + 2 x
//! 11.25 = 38.5 bytes per element); with `Fss` 1 round and `16 n`. Dealer
//! ([`offline_bytes`]): the truncation parts (`16 n`, when `k > 0`) and the
//! selection's. The thresholds are exact at the input's scale, so the result
//! equals the clip of the truncated value (which is at most one unit high, as
//! the truncation's).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

use crate::compare::{self, Comparison, Selection};
use crate::cost::{Cost, Trace};
use crate::mask::{self, Mask, TruncParts};
use crate::relu::value_form;
use crate::select::{self, Form};
use crate::{Ctx, ProtocolError};

/// A clip layer's public bounds, encoded by the caller: each present bound
/// as `(threshold, constant)`, the threshold at the input's scale `f + k`
/// (compared with the untruncated input) and the constant at the output's `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Lower bound, if any.
    pub lower: Option<(Elem, Elem)>,
    /// Upper bound, if any.
    pub upper: Option<(Elem, Elem)>,
}

impl Bounds {
    /// The bounds present, lower first.
    fn present(&self) -> Vec<(Elem, Elem)> {
        self.lower
            .iter()
            .chain(self.upper.iter())
            .copied()
            .collect()
    }

    /// How many bounds (comparisons per element).
    pub fn count(&self) -> usize {
        usize::from(self.lower.is_some()) + usize::from(self.upper.is_some())
    }
}

/// This party's material for one clip layer.
pub struct ClipMaterial<C: Comparison> {
    mask: Mask,
    trunc: Option<TruncParts>,
    select: C::SelectMaterial,
}

/// The selection of a clip: `[y < t]` for each bound, times the value's
/// form over its terms (`(r63, q)` with truncation, `r` without).
fn selection(k: u32, bounds: usize) -> Selection {
    Selection::below(bounds, if k > 0 { 2 } else { 1 })
}

/// Dealer: material for `n` clips of `bounds` bounds, truncating by `k` bits.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, k: u32, bounds: usize) {
    let r = mask::deal(d, n);
    let sel = selection(k, bounds);
    match (k > 0).then(|| mask::deal_trunc(d, &r, k)) {
        Some((r63, q)) => cmp.deal_select(d, &r, &sel, &[&r63, &q]),
        None => cmp.deal_select(d, &r, &sel, &[&r]),
    }
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    n: usize,
    k: u32,
    bounds: usize,
) -> ClipMaterial<C> {
    let mask = mask::take(p, n);
    let trunc = (k > 0).then(|| mask::take_trunc(p, n));
    let select = cmp.take_select(p, n, &selection(k, bounds));
    ClipMaterial {
        mask,
        trunc,
        select,
    }
}

/// Shares of `clip(y >> k)`.
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    y: &[Elem],
    k: u32,
    bounds: Bounds,
    mat: &ClipMaterial<C>,
) -> Result<Vec<Elem>, ProtocolError> {
    let present = bounds.present();
    let thresholds: Vec<Elem> = present.iter().map(|b| b.0).collect();
    let c = mask::open(ctx, y, &mat.mask)?;
    let sel = selection(k, present.len());
    let below = compare::select(cmp, ctx, &c, &thresholds, &sel, &mat.select)?;
    let x = value_form(&c, k, &mat.mask, mat.trunc.as_ref());
    let lead = ctx.lead();
    // Start from hi (or x'), subtract b_lo (x' - lo), add b_hi (x' - hi).
    let mut out = match bounds.upper {
        Some((_, hi)) => vec![if lead { hi } else { 0 }; y.len()],
        None => select::local(lead, &x),
    };
    for (i, (_, t)) in present.iter().enumerate() {
        let form = Form {
            constant: x.constant.iter().map(|v| v.wrapping_sub(*t)).collect(),
            terms: x.terms.iter().map(|(a, s)| (a.clone(), *s)).collect(),
        };
        let add = i > 0 || bounds.lower.is_none();
        for (o, v) in out.iter_mut().zip(below.times(i, &form)) {
            *o = if add {
                o.wrapping_add(v)
            } else {
                o.wrapping_sub(v)
            };
        }
    }
    Ok(out)
}

/// The communication of [`eval`] on `n` elements with `bounds` bounds.
pub fn trace<C: Comparison>(cmp: &C, n: usize, bounds: usize) -> Trace {
    mask::open_trace(n).then(cmp.select_trace(n, &selection(0, bounds)))
}

/// Closed-form cost of [`eval`]: the opening and the selection at every bound.
pub fn cost<C: Comparison>(cmp: &C, n: usize, bounds: usize) -> Cost {
    mask::open_cost(n).then(cmp.select_cost(n, &selection(0, bounds)))
}

/// Closed-form dealer bytes of [`deal`]: the truncation parts and the selection.
pub fn offline_bytes<C: Comparison>(cmp: &C, n: usize, k: u32, bounds: usize) -> u64 {
    let trunc = if k > 0 {
        mask::trunc_offline_bytes(n)
    } else {
        0
    };
    trunc + cmp.select_offline_bytes(n, &selection(k, bounds))
}
