//! Softmax over each record's classes, for the `probabilities` output.
//!
//! For logits `x` at scale `f + s` (`s` bits above the tables' input scale `f`):
//! 1. the maximum of each record's values by the max-pool tournament
//!    (`ceil(log2 k)` levels of 6 rounds);
//! 2. `z = x - max <= 0` locally;
//! 3. `e = exp(z)` by the exp table with the truncation of `z` by `s` fused
//!    into its opening (7 rounds): values in `(0, 1]` at exp's fine output
//!    scale `o_e` (36 bits), so each is within the table's relative bound
//!    (5e-4) on all of `[-16, 0]`, and exactly 0 below;
//! 4. `S = sum e` locally, in `[1, k]` at scale `o_e`, and `1/S` by the
//!    reciprocal table with the truncation of `S` to `f` fused into its
//!    opening (7 rounds; the table's range `[1/4, 16]` bounds `k` to 16 classes);
//! 5. `p = e * (1/S)` with one Beaver product per class (1 round), at scale
//!    [`output_scale`] (`o_e + f` = 52 at 16 bits).
//!
//! Keeping exp's fine scale (rather than a scale-`f` exp) is what makes
//! every probability relatively accurate: measured over ties, all-equal
//! rows, huge spreads and the whole input range (`cryptmed bench --op
//! softmax`, and the tests), `|p - p_true| <= 2.5e-3 p_true + 2e-7`, where a
//! scale-`f` exp gave about `2e-3 p + 2e-4`. Two classes: 21 rounds.
//!
//! **Cost** ([`cost`], [`offline_bytes`]): the tournament's, exp's on
//! `B k` elements shifted by `s`, the reciprocal's on `B` elements shifted by
//! `o_e - f`, and the product's (`32 B k` online, `8 B k` dealer bytes).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

pub use cryptmed_approx::Piecewise;

use crate::compare::Comparison;
use crate::cost::{Cost, Trace};
use crate::{Ctx, ProtocolError, mul, pool, smooth};

/// The exp and reciprocal tables the softmax uses.
pub struct Tables<'a> {
    /// `e^x` (its output may be finer than its input).
    pub exp: &'a Piecewise,
    /// `1/x` on `[1/4, 16]`, input at the exp table's input scale.
    pub reciprocal: &'a Piecewise,
}

impl Tables<'_> {
    /// Bits the sum of exponentials is truncated by for the reciprocal.
    fn sum_shift(&self) -> u32 {
        self.exp
            .out_frac_bits
            .saturating_sub(self.reciprocal.frac_bits)
    }
}

/// Fractional bits of the probabilities [`eval`] returns.
pub fn output_scale(t: &Tables<'_>) -> u32 {
    t.exp.out_frac_bits + t.reciprocal.out_frac_bits
}

/// This party's material for a batch.
pub struct SoftmaxMaterial<C: Comparison> {
    max: Vec<pool::LevelMaterial<C>>,
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
    smooth::deal(cmp, d, batch * classes, t.exp, shift);
    smooth::deal(cmp, d, batch, t.reciprocal, t.sum_shift());
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
        exp: smooth::take(cmp, p, batch * classes, t.exp, shift),
        recip: smooth::take(cmp, p, batch, t.reciprocal, t.sum_shift()),
        mul: mul::take(p, batch * classes),
    }
}

/// Shares of each record's softmax, at scale [`output_scale`].
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    classes: usize,
    t: &Tables<'_>,
    mat: &SoftmaxMaterial<C>,
) -> Result<Vec<Elem>, ProtocolError> {
    if classes == 0 {
        return Ok(vec![]);
    }
    let batch = x.len() / classes;
    let windows: Vec<Vec<usize>> = (0..batch)
        .map(|b| (b * classes..(b + 1) * classes).collect())
        .collect();
    let max = pool::eval(cmp, ctx, x, &windows, &mat.max)?;
    let z: Vec<Elem> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v.wrapping_sub(max[i / classes]))
        .collect();
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
    pool::trace(cmp, &vec![classes; batch])
        .then(smooth::trace(cmp, n, t.exp, shift))
        .then(smooth::trace(cmp, batch, t.reciprocal, t.sum_shift()))
        .then(mul::trace(n))
}

/// Closed-form online cost of [`eval`] (module docs).
pub fn cost<C: Comparison>(
    cmp: &C,
    batch: usize,
    classes: usize,
    shift: u32,
    t: &Tables<'_>,
) -> Cost {
    let n = batch * classes;
    pool::cost(cmp, &vec![classes; batch])
        .then(smooth::cost(cmp, n, t.exp, shift))
        .then(smooth::cost(cmp, batch, t.reciprocal, t.sum_shift()))
        .then(mul::cost(n))
}

/// Closed-form dealer bytes of [`deal`] (module docs).
pub fn offline_bytes<C: Comparison>(
    cmp: &C,
    batch: usize,
    classes: usize,
    shift: u32,
    t: &Tables<'_>,
) -> u64 {
    let n = batch * classes;
    pool::offline_bytes(cmp, &vec![classes; batch])
        + smooth::offline_bytes(cmp, n, t.exp, shift)
        + smooth::offline_bytes(cmp, batch, t.reciprocal, t.sum_shift())
        + mul::offline_bytes(n)
}
