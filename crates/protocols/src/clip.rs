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
//! 2. both comparisons from that one opening, in the same rounds (4 with
//!    [`Ppa`](crate::Ppa));
//! 3. both products `b_t (x' - t)` with one opened bit each, in one round
//!    ([`select`](crate::select)).
//!
//! Online for `n` elements and `m` bounds ([`cost`]): 6 rounds and `16 n + m
//! 88 ceil(n/8) + 2 m ceil(n/8)` bytes both ways with `Ppa` (ReLU6: 16 + 2 x
//! 11.25 = 38.5 bytes per element). Dealer ([`offline_bytes`]): the
//! truncation parts (`16 n`, when `k > 0`), the comparison's, and one select
//! per bound over the form's terms. The thresholds are exact at the input's
//! scale, so the result equals the clip of the truncated value (which is at
//! most one unit high, as the truncation's).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_share::open::open_bits;

use crate::compare::Comparison;
use crate::cost::{Cost, Trace};
use crate::mask::{self, Mask, TruncParts};
use crate::relu::value_form;
use crate::select::{self, Form, SelectMaterial};
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
    cmp: C::Material,
    selects: Vec<SelectMaterial>,
}

/// Dealer: material for `n` clips of `bounds` bounds, truncating by `k` bits.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, k: u32, bounds: usize) {
    let r = mask::deal(d, n);
    let trunc = (k > 0).then(|| mask::deal_trunc(d, &r, k));
    cmp.deal(d, &r, bounds);
    for _ in 0..bounds {
        match &trunc {
            Some((r63, q)) => select::deal(d, n, &[r63, q]),
            None => select::deal(d, n, &[&r]),
        }
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
    let cmp_mat = cmp.take(p, n, bounds);
    let terms = if k > 0 { 2 } else { 1 };
    let selects = (0..bounds).map(|_| select::take(p, n, terms)).collect();
    ClipMaterial {
        mask,
        trunc,
        cmp: cmp_mat,
        selects,
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
    let below = cmp.less_than(ctx, &c, &thresholds, &mat.cmp)?;
    let x = value_form(&c, k, &mat.mask, mat.trunc.as_ref());
    // b_t (x' - t) for each bound, with all the opened bits in one message.
    let forms: Vec<Form<'_>> = present
        .iter()
        .map(|(_, t)| Form {
            constant: x.constant.iter().map(|v| v.wrapping_sub(*t)).collect(),
            terms: x.terms.iter().map(|(a, s)| (a.clone(), *s)).collect(),
        })
        .collect();
    let masked: Vec<_> = below
        .iter()
        .zip(&mat.selects)
        .map(|(b, m)| select::masked(b, m))
        .collect();
    let refs: Vec<_> = masked.iter().collect();
    let opened = open_bits(ctx.ch, &refs)?;
    let lead = ctx.lead();
    // Start from hi (or x'), subtract b_lo (x' - lo), add b_hi (x' - hi).
    let mut out = match bounds.upper {
        Some((_, hi)) => vec![if lead { hi } else { 0 }; y.len()],
        None => select::local(lead, &x),
    };
    for (i, ((e, form), m)) in opened.iter().zip(&forms).zip(&mat.selects).enumerate() {
        let add = i > 0 || bounds.lower.is_none();
        for (o, v) in out.iter_mut().zip(select::finish(lead, e, form, m)) {
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
    let bits = Trace::exchange((bounds * cryptmed_ring::bits::bytes_for(n)) as u64);
    mask::open_trace(n).then(cmp.trace(n, bounds)).then(bits)
}

/// Closed-form cost of [`eval`]: the opening, the comparison at every bound, one bit per bound.
pub fn cost<C: Comparison>(cmp: &C, n: usize, bounds: usize) -> Cost {
    let bits = Cost::exchange(bounds as u64 * crate::cost::bit_bytes(n));
    mask::open_cost(n).then(cmp.cost(n, bounds)).then(bits)
}

/// Closed-form dealer bytes of [`deal`].
pub fn offline_bytes<C: Comparison>(cmp: &C, n: usize, k: u32, bounds: usize) -> u64 {
    let (trunc, terms) = if k > 0 {
        (mask::trunc_offline_bytes(n), 2)
    } else {
        (0, 1)
    };
    trunc + cmp.offline_bytes(n, bounds) + bounds as u64 * select::offline_bytes(n, terms)
}
