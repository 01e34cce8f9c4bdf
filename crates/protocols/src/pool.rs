//! Max pooling as a tournament of comparisons.
//!
//! `max(a, b) = b + (a - b) * [a >= b]`. Each level pairs up the remaining
//! candidates of every window (an odd one passes through), opens
//! `c = (a - b) + r` for all pairs at once and selects `[a - b >= 0] (a - b)`
//! as a ReLU without truncation does (`a - b = c - r` is a linear form of the
//! mask). A `k x k` window takes `ceil(log2(k^2))` levels; a level costs what
//! a ReLU layer of its comparisons does (see [`cost`]): 6 rounds with `Ppa`,
//! 1 with `Fss` (each level's candidates are the previous level's shared
//! results, so a level cannot start before the previous one's opening).
//!
//! Bytes: a window of `s` candidates needs `s - 1` comparisons in all; a
//! level of `m` comparisons costs `16 m + 90 ceil(m/8)` both ways with `Ppa`,
//! `16 m` with `Fss`. So a `k x k` window costs about `27.25 (k^2 - 1)` bytes
//! per output with `Ppa` (82 bytes for 2 x 2, 218 for 3 x 3, exactly so
//! when every level's count is a multiple of 8) and `16 (k^2 - 1)` with
//! `Fss`. No truncation is
//! needed: run it on the untruncated output of the preceding linear layer
//! and the following ReLU truncates (max pooling commutes with ReLU and with
//! the monotone truncation, so the engine evaluates max-pool first).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

use crate::compare::{self, Comparison};
use crate::cost::{Cost, Trace};
use crate::mask::{self, Mask};
use crate::relu::{selection, value_form};
use crate::{Ctx, ProtocolError};

/// Number of comparisons at each level of the tournament over windows of these sizes.
pub fn level_sizes(window_sizes: &[usize]) -> Vec<usize> {
    let mut sizes = window_sizes.to_vec();
    let mut out = Vec::new();
    while sizes.iter().any(|s| *s > 1) {
        out.push(sizes.iter().map(|s| s / 2).sum());
        sizes.iter_mut().for_each(|s| *s = s.div_ceil(2));
    }
    out
}

/// This party's material for one level.
pub struct LevelMaterial<C: Comparison> {
    mask: Mask,
    select: C::SelectMaterial,
}

/// Dealer: material for a tournament over windows of the given sizes.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, window_sizes: &[usize]) {
    for n in level_sizes(window_sizes) {
        let r = mask::deal(d, n);
        cmp.deal_select(d, &r, &selection(0), &[&r]);
    }
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    window_sizes: &[usize],
) -> Vec<LevelMaterial<C>> {
    level_sizes(window_sizes)
        .into_iter()
        .map(|n| LevelMaterial {
            mask: mask::take(p, n),
            select: cmp.take_select(p, n, &selection(0)),
        })
        .collect()
}

/// Shares of the maximum of each window (`windows[i]` indexes into `x`).
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    windows: &[Vec<usize>],
    mat: &[LevelMaterial<C>],
) -> Result<Vec<Elem>, ProtocolError> {
    let mut cands: Vec<Vec<Elem>> = windows
        .iter()
        .map(|w| w.iter().map(|i| x[*i]).collect())
        .collect();
    for level in mat {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for cs in &cands {
            for pair in cs.chunks_exact(2) {
                a.push(pair[0]);
                b.push(pair[1]);
            }
        }
        let diff = cryptmed_ring::sub(&a, &b);
        let c = mask::open(ctx, &diff, &level.mask)?;
        let sel = selection(0);
        let picked = compare::select(cmp, ctx, &c, &[0], &sel, &level.select)?;
        let chosen = picked.times(0, &value_form(&c, 0, &level.mask, None));
        let mut at = 0;
        for cs in cands.iter_mut() {
            let mut next = Vec::with_capacity(cs.len().div_ceil(2));
            for _ in 0..cs.len() / 2 {
                next.push(b[at].wrapping_add(chosen[at]));
                at += 1;
            }
            if cs.len() % 2 == 1 {
                next.push(cs[cs.len() - 1]);
            }
            *cs = next;
        }
    }
    Ok(cands.into_iter().map(|c| c[0]).collect())
}

/// The communication of [`eval`].
pub fn trace<C: Comparison>(cmp: &C, window_sizes: &[usize]) -> Trace {
    let mut t = Trace::default();
    for n in level_sizes(window_sizes) {
        t.append(crate::relu::trace(cmp, n));
    }
    t
}

/// Closed-form dealer bytes of [`deal`]: per level of `m` comparisons, a
/// selection over the one term `r`.
pub fn offline_bytes<C: Comparison>(cmp: &C, window_sizes: &[usize]) -> u64 {
    levels_offline_bytes(cmp, &level_sizes(window_sizes))
}

/// [`offline_bytes`] from the comparisons per level ([`level_sizes`]); a
/// batch of `b` records has `b` times one record's (sizing a batch needs no
/// list of every window of every record).
pub fn levels_offline_bytes<C: Comparison>(cmp: &C, levels: &[usize]) -> u64 {
    levels
        .iter()
        .map(|m| cmp.select_offline_bytes(*m, &selection(0)))
        .sum()
}

/// Closed-form cost of [`eval`]: per level of `m` comparisons, the cost of a
/// ReLU on `m` elements ([`relu::cost`](crate::relu::cost)).
pub fn cost<C: Comparison>(cmp: &C, window_sizes: &[usize]) -> Cost {
    level_sizes(window_sizes)
        .into_iter()
        .fold(Cost::default(), |c, m| c.then(crate::relu::cost(cmp, m)))
}
