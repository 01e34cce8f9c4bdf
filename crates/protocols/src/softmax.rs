//! Softmax over each record's classes, for the `probabilities` output.
//!
//! For logits `x` at scale `f + s` (`s` bits above the tables' input scale `f`):
//! 1. the maximum of each record's values by the max-pool tournament
//!    (`ceil(log2 k)` levels of 6 rounds);
//! 2. `z = x - max <= 0` locally;
//! 3. `e = exp(z)` by the exp table with the truncation of `z` by `s` fused
//!    into its opening (7 rounds): values in `(0, 1]` at exp's fine output
//!    scale `o_e` (36 bits), each within the table's relative bound (1e-4)
//!    on `[-14.5, 0]`, within `5e-11` absolutely on `[-16, -14.5]`, and
//!    exactly 0 below;
//! 4. `S = sum e` locally, in `[1, k]` at scale `o_e`, and `y = 1/S` by the
//!    reciprocal table with the truncation of `S` to `f` fused into its
//!    opening (7 rounds; the table's range `[1/4, 16]` bounds `k` to 16
//!    classes), relatively within 1e-3;
//! 5. one Newton step on the reciprocal, folded into the products: `u = S y`
//!    and `v_i = e_i y` (one round of Beaver products), both truncated to
//!    [`NEWTON_SCALE`] bits (one opening), then `p_i = v_i (2 - u)` (one
//!    round) at [`output_scale`] = 60 bits. With `y = (1 + eps) / S`,
//!    `p_i = (e_i / S)(1 - eps^2)`: the reciprocal's error leaves only its
//!    square (1e-6), so a record's probabilities sum to 1 within about
//!    `1e-6`, and a confident record's top class comes out as `1 - tiny`
//!    rather than the reciprocal's `1 - 1e-3`.
//!
//! What remains is exp's relative error `d_i`: `p_i (d_i - sum_j p_j d_j)`,
//! at most `2 p_i (1 - p_i) 1e-4 <= 5e-5` (measured over ties,
//! all-equal rows, huge spreads and the whole input range by `cryptmed
//! bench --op softmax` and the tests). Two classes: 23 rounds.
//!
//! **Cost** ([`cost`], [`offline_bytes`]): the tournament's, exp's on
//! `B k` elements shifted by `s`, the reciprocal's on `B` elements shifted by
//! `o_e - f`, two Beaver products on `B k + B` and `B k` elements and one
//! truncation of `B k + B` (`48 B k + 48 B` online and `32 B k + 24 B`
//! dealer bytes for step 5).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

pub use cryptmed_approx::Piecewise;

use crate::compare::Comparison;
use crate::cost::{Cost, Trace};
use crate::{Ctx, ProtocolError, mul, pool, smooth, trunc};

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

/// Fractional bits the Newton step's factors are truncated to.
pub const NEWTON_SCALE: u32 = 30;

/// Fractional bits of the probabilities [`eval`] returns (the product of
/// two [`NEWTON_SCALE`] factors; values up to 4 fit below `2^62`).
pub fn output_scale(_t: &Tables<'_>) -> u32 {
    2 * NEWTON_SCALE
}

/// Bits the Newton step's products (at the exp and reciprocal output
/// scales together) are truncated by.
fn newton_shift(t: &Tables<'_>) -> u32 {
    (t.exp.out_frac_bits + t.reciprocal.out_frac_bits).saturating_sub(NEWTON_SCALE)
}

/// This party's material for a batch.
pub struct SoftmaxMaterial<C: Comparison> {
    max: Vec<pool::LevelMaterial<C>>,
    exp: smooth::SmoothMaterial<C>,
    recip: smooth::SmoothMaterial<C>,
    products: mul::MulMaterial,
    trunc: trunc::TruncMaterial,
    newton: mul::MulMaterial,
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
    mul::deal(d, batch * classes + batch);
    trunc::deal(d, batch * classes + batch, newton_shift(t));
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
        products: mul::take(p, batch * classes + batch),
        trunc: trunc::take(p, batch * classes + batch),
        newton: mul::take(p, batch * classes),
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
    // One round of products: v_i = e_i y and u = S y, then both truncated.
    let n = x.len();
    let mut left = e;
    left.extend_from_slice(&sums);
    let mut right: Vec<Elem> = (0..n).map(|i| inv[i / classes]).collect();
    right.extend_from_slice(&inv);
    let products = mul::eval(ctx, &left, &right, &mat.products)?;
    let products = trunc::eval(ctx, &products, newton_shift(t), &mat.trunc)?;
    let (v, u) = products.split_at(n);
    // 2 - u at NEWTON_SCALE (the leader adds the public 2).
    let two: Elem = if ctx.lead() { 2 << NEWTON_SCALE } else { 0 };
    let factor: Vec<Elem> = (0..n).map(|i| two.wrapping_sub(u[i / classes])).collect();
    mul::eval(ctx, v, &factor, &mat.newton)
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
        .then(mul::trace(n + batch))
        .then(trunc::trace(n + batch))
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
        .then(mul::cost(n + batch))
        .then(trunc::cost(n + batch))
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
        + mul::offline_bytes(n + batch)
        + trunc::offline_bytes(n + batch)
        + mul::offline_bytes(n)
}
