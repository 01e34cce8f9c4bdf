//! Softmax over each record's classes, for the `probabilities` output.
//!
//! 1. the maximum of each record's values by the max-pool tournament
//!    (`ceil(log2 k)` levels of 6 rounds);
//! 2. `z = x - max <= 0` locally, truncated to scale `f` (1 round) when the
//!    input is at a finer scale;
//! 3. `e = exp(z)` by the exp table (7 rounds): values in `(0, 1]`;
//! 4. `s = sum e` locally, in `[1, k]`, and `1/s` by the reciprocal table
//!    (7 rounds; its range `[1/4, 16]` bounds `k` to 16 classes);
//! 5. `p = e * (1/s)` with one Beaver product per class (1 round), at scale `2f`.
//!
//! Error: the exp table's (5e-4 relative for `e^z >= 1/8`, 4 units below)
//! and the reciprocal's (1e-3 relative), so about 2e-3 relative on each
//! probability. Two classes: 23 rounds in all.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

pub use cryptmed_approx::Piecewise;

use crate::compare::Comparison;
use crate::cost::Trace;
use crate::{Ctx, ProtocolError, mul, pool, smooth, trunc};

/// The exp and reciprocal tables the softmax uses.
pub struct Tables<'a> {
    /// `e^x`.
    pub exp: &'a Piecewise,
    /// `1/x` on `[1/4, 16]`.
    pub reciprocal: &'a Piecewise,
}

/// This party's material for a batch.
pub struct SoftmaxMaterial<C: Comparison> {
    max: Vec<pool::LevelMaterial<C>>,
    trunc: Option<trunc::TruncMaterial>,
    exp: smooth::SmoothMaterial<C>,
    recip: smooth::SmoothMaterial<C>,
    mul: mul::MulMaterial,
}

/// Dealer: material for `batch` records of `classes` values at `shift` bits above `f`.
pub fn deal<C: Comparison>(
    cmp: &C,
    d: &mut Dealer,
    batch: usize,
    classes: usize,
    shift: u32,
    t: &Tables<'_>,
) {
    pool::deal(cmp, d, &vec![classes; batch]);
    if shift > 0 {
        trunc::deal(d, batch * classes, shift);
    }
    smooth::deal(cmp, d, batch * classes, t.exp);
    smooth::deal(cmp, d, batch, t.reciprocal);
    mul::deal(d, batch * classes);
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    batch: usize,
    classes: usize,
    shift: u32,
    t: &Tables<'_>,
) -> SoftmaxMaterial<C> {
    SoftmaxMaterial {
        max: pool::take(cmp, p, &vec![classes; batch]),
        trunc: (shift > 0).then(|| trunc::take(p, batch * classes)),
        exp: smooth::take(cmp, p, batch * classes, t.exp),
        recip: smooth::take(cmp, p, batch, t.reciprocal),
        mul: mul::take(p, batch * classes),
    }
}

/// Shares of each record's softmax, at scale `2f`.
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    classes: usize,
    shift: u32,
    t: &Tables<'_>,
    mat: &SoftmaxMaterial<C>,
) -> Result<Vec<Elem>, ProtocolError> {
    let batch = x.len() / classes;
    let windows: Vec<Vec<usize>> = (0..batch)
        .map(|b| (b * classes..(b + 1) * classes).collect())
        .collect();
    let max = pool::eval(cmp, ctx, x, &windows, &mat.max)?;
    let mut z: Vec<Elem> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v.wrapping_sub(max[i / classes]))
        .collect();
    if let Some(tm) = &mat.trunc {
        z = trunc::eval(ctx, &z, shift, tm)?;
    }
    let e = smooth::eval(cmp, ctx, &z, t.exp, &mat.exp)?;
    let sums: Vec<Elem> = e
        .chunks(classes)
        .map(|c| c.iter().fold(0 as Elem, |a, v| a.wrapping_add(*v)))
        .collect();
    let inv = smooth::eval(cmp, ctx, &sums, t.reciprocal, &mat.recip)?;
    let inv_each: Vec<Elem> = (0..x.len()).map(|i| inv[i / classes]).collect();
    mul::eval(ctx, &e, &inv_each, &mat.mul)
}

/// The communication of [`eval`].
pub fn trace<C: Comparison>(
    cmp: &C,
    batch: usize,
    classes: usize,
    shift: u32,
    t: &Tables<'_>,
) -> Trace {
    let n = batch * classes;
    let mut tr = pool::trace(cmp, &vec![classes; batch]);
    if shift > 0 {
        tr.append(trunc::trace(n));
    }
    tr.append(smooth::trace(cmp, n, t.exp));
    tr.append(smooth::trace(cmp, batch, t.reciprocal));
    tr.then(mul::trace(n))
}
