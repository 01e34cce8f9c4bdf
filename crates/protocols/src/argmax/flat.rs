//! The all-pairs argmax: every pairwise comparison from one opening, each
//! candidate's win bits ANDed in a tree; the result is an XOR-shared one-hot
//! vector (revealed, or refined, by the caller; see the module above).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_share::open::open_bits;

use crate::compare::Comparison;
use crate::cost::{Cost, Trace, bit_bytes, ceil_log2};
use crate::mask::{self, Mask};
use crate::{Ctx, ProtocolError, and};

/// Number of ANDs (each over all candidates) per level of the win-bit tree.
fn and_levels(classes: usize) -> Vec<usize> {
    let mut count = classes.saturating_sub(1);
    let mut out = Vec::new();
    while count > 1 {
        out.push(count / 2);
        count -= count / 2;
    }
    out
}

/// The position of the pair `(lo, hi)`, `lo < hi`, in [`pairs`]`(classes)`:
/// the rows before `lo` hold `classes - 1 + ... + classes - lo` pairs.
fn pair_index(classes: usize, lo: usize, hi: usize) -> usize {
    lo * (2 * classes - lo - 1) / 2 + (hi - lo - 1)
}

fn pairs(classes: usize) -> Vec<(usize, usize)> {
    (0..classes)
        .flat_map(|i| (i + 1..classes).map(move |j| (i, j)))
        .collect()
}

/// This party's material for `batch` one-hot argmaxes over `classes` values.
pub(crate) struct FlatMaterial<C: Comparison> {
    mask: Mask,
    cmp: C::Material,
    ands: Vec<Vec<and::Triple>>,
}

/// Dealer: material for `batch` argmaxes over `classes` values.
pub(super) fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, batch: usize, classes: usize) {
    let m = batch * pairs(classes).len();
    let r = mask::deal(d, m);
    cmp.deal(d, &r, 1);
    for count in and_levels(classes) {
        for _ in 0..count {
            and::deal(d, batch * classes, 1);
        }
    }
}

/// Party: mirror of [`deal`].
pub(super) fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    batch: usize,
    classes: usize,
) -> FlatMaterial<C> {
    let m = batch * pairs(classes).len();
    let mask = mask::take(p, m);
    let cmp_mat = cmp.take(p, m, 1);
    let ands = and_levels(classes)
        .into_iter()
        .map(|count| {
            (0..count)
                .map(|_| and::take(p, batch * classes, 1))
                .collect()
        })
        .collect();
    FlatMaterial {
        mask,
        cmp: cmp_mat,
        ands,
    }
}

/// XOR shares of the one-hot vector of each row's first maximum, for `x`
/// holding `batch` rows of `classes` values (lane `b * classes + i`).
pub(super) fn onehot<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    classes: usize,
    mat: &FlatMaterial<C>,
) -> Result<BitVec, ProtocolError> {
    let lead = ctx.lead();
    let batch = x.len() / classes;
    let prs = pairs(classes);
    let lanes = batch * classes;
    let mut wins: Vec<BitVec> = if classes == 1 {
        vec![if lead {
            BitVec::ones(lanes)
        } else {
            BitVec::zeros(lanes)
        }]
    } else {
        let diff: Vec<Elem> = (0..batch)
            .flat_map(|b| prs.iter().map(move |(i, j)| (b, *i, *j)))
            .map(|(b, i, j)| x[b * classes + i].wrapping_sub(x[b * classes + j]))
            .collect();
        let c = mask::open(ctx, &diff, &mat.mask)?;
        let less = cmp.less_than(ctx, &c, &[0], &mat.cmp)?.remove(0);
        // Position q of candidate (b, i)'s list: its q-th opponent.
        (0..classes - 1)
            .map(|q| {
                let mut v = BitVec::zeros(lanes);
                for b in 0..batch {
                    for i in 0..classes {
                        let j = if q < i { q } else { q + 1 };
                        let (lo, hi) = (i.min(j), i.max(j));
                        let k = pair_index(classes, lo, hi);
                        let s = less.get(b * prs.len() + k);
                        // s = [x_lo < x_hi]: i = lo wins with !s, i = hi wins with s.
                        let bit = if i == lo { s ^ u64::from(lead) } else { s };
                        v.set(b * classes + i, bit);
                    }
                }
                v
            })
            .collect()
    };
    for level in &mat.ands {
        let mut opened = Vec::new();
        for (k, t) in level.iter().enumerate() {
            opened.extend(and::masked(&wins[2 * k], &[&wins[2 * k + 1]], t));
        }
        let refs: Vec<&BitVec> = opened.iter().collect();
        let public = open_bits(ctx.ch, &refs)?;
        let mut next: Vec<BitVec> = level
            .iter()
            .enumerate()
            .map(|(k, t)| {
                and::finish(lead, &public[2 * k], &public[2 * k + 1..2 * k + 2], t).remove(0)
            })
            .collect();
        if wins.len() % 2 == 1 {
            next.push(wins[wins.len() - 1].clone());
        }
        wins = next;
    }
    Ok(wins.swap_remove(0))
}

/// Closed-form dealer bytes of [`deal`]: the comparisons' material for
/// `B K (K-1)/2` pairs and one bit per lane for each of the `K - 2` ANDs.
pub(super) fn offline_bytes<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> u64 {
    let ands: usize = and_levels(classes).iter().sum();
    cmp.offline_bytes(batch * pairs_count(classes), 1) + ands as u64 * bit_bytes(batch * classes)
}

/// `K (K-1) / 2`: the pairs of `K` classes.
fn pairs_count(classes: usize) -> usize {
    classes * classes.saturating_sub(1) / 2
}

/// The communication of [`onehot`].
pub(super) fn trace<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Trace {
    let lanes = batch * classes;
    let mut t = Trace::default();
    if classes > 1 {
        let m = batch * pairs(classes).len();
        t.append(mask::open_trace(m).then(cmp.trace(m, 1)));
    }
    for count in and_levels(classes) {
        t.append(Trace::exchange((2 * count * bytes_for(lanes)) as u64));
    }
    t
}

/// Closed-form cost of [`onehot`] (see the module docs).
pub(super) fn cost<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Cost {
    let lanes = batch * classes;
    let mut c = Cost::default();
    if classes > 1 {
        let p = batch * classes * (classes - 1) / 2;
        c = mask::open_cost(p).then(cmp.cost(p, 1));
    }
    if classes > 2 {
        let ands = Cost::new(
            4 * (classes - 2) as u64 * bit_bytes(lanes),
            ceil_log2(classes - 1),
        );
        c = c.then(ands);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealer_bytes_match_the_closed_form() {
        use cryptmed_share::Seed;
        let cmp = crate::Ppa::DEFAULT;
        for (batch, classes) in [(1, 1), (1, 2), (3, 10), (2, 17), (1, 1000)] {
            let mut d = Dealer::new(&Seed::from_u64(1), &Seed::from_u64(2));
            deal(&cmp, &mut d, batch, classes);
            assert_eq!(
                d.pending_bytes() as u64,
                offline_bytes(&cmp, batch, classes),
                "{batch} x {classes}"
            );
        }
    }

    #[test]
    fn pair_index_is_the_position_in_the_pair_list() {
        for classes in [2, 3, 10, 17] {
            for (k, (lo, hi)) in pairs(classes).into_iter().enumerate() {
                assert_eq!(pair_index(classes, lo, hi), k);
            }
        }
    }
}
