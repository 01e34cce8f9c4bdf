//! The all-pairs argmax: every pairwise comparison from one opening, then
//! each candidate's `K - 1` win bits combined into "won them all"; the result
//! is an XOR-shared one-hot vector (revealed, or refined, by the caller; see
//! the module above).
//!
//! Two ways to combine, both written against [`Comparison`]; the cheaper for
//! the comparison at hand (fewer rounds, then fewer bytes, from the closed
//! forms; see `scheme`) runs, so every party picks the same:
//! - **tree**: the win bits as XOR shares ([`Comparison::less_than`]), ANDed
//!   in a tree of `ceil(log2(K-1))` rounds (the choice for
//!   [`Ppa`](crate::Ppa));
//! - **count**: the win bits as arithmetic shares (a selection with constant
//!   forms), summed per candidate, and the sum compared with `K - 1` after a
//!   second masked opening: 2 openings whatever `K`, and nothing else where
//!   comparisons and selections are local (the choice for
//!   [`Fss`](crate::Fss) from 4 classes on: 10 classes in 2 rounds instead
//!   of 5).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_share::open::open_bits;

use crate::compare::{self, Comparison, Selection};
use crate::cost::{Cost, Trace, bit_bytes, ceil_log2};
use crate::mask::{self, Mask};
use crate::select::Form;
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

/// How a candidate's win bits are combined (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Tree,
    Count,
}

/// The count scheme's selection: `[x_lo < x_hi]` times a constant.
fn win_selection() -> Selection {
    Selection::below(1, 0)
}

/// The scheme with fewer rounds, then fewer bytes, for a comparison whose
/// comparisons take no rounds of their own; the tree otherwise. (With `Ppa`
/// the count scheme would win only for the 77 groups of a 1000-class
/// grouped argmax, by one round; the tree is kept there so that `Ppa`'s
/// published costs stand.)
fn scheme<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Scheme {
    if classes < 3 || cmp.cost(1, 1).rounds > 0 {
        return Scheme::Tree;
    }
    let (t, c) = (
        tree_cost(cmp, batch, classes),
        count_cost(cmp, batch, classes),
    );
    if (c.rounds, c.bytes) < (t.rounds, t.bytes) {
        Scheme::Count
    } else {
        Scheme::Tree
    }
}

/// This party's material for `batch` one-hot argmaxes over `classes` values.
pub(crate) struct FlatMaterial<C: Comparison> {
    mask: Mask,
    combine: Combine<C>,
}

enum Combine<C: Comparison> {
    Tree {
        cmp: C::Material,
        ands: Vec<Vec<and::Triple>>,
    },
    Count {
        wins: C::SelectMaterial,
        mask: Mask,
        cmp: C::Material,
    },
}

/// Dealer: material for `batch` argmaxes over `classes` values.
pub(super) fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, batch: usize, classes: usize) {
    let m = batch * pairs(classes).len();
    let r = mask::deal(d, m);
    match scheme(cmp, batch, classes) {
        Scheme::Tree => {
            cmp.deal(d, &r, 1);
            for count in and_levels(classes) {
                for _ in 0..count {
                    and::deal(d, batch * classes, 1);
                }
            }
        }
        Scheme::Count => {
            cmp.deal_select(d, &r, &win_selection(), &[]);
            let r2 = mask::deal(d, batch * classes);
            cmp.deal(d, &r2, 1);
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
    let lanes = batch * classes;
    let mask = mask::take(p, m);
    let combine = match scheme(cmp, batch, classes) {
        Scheme::Tree => Combine::Tree {
            cmp: cmp.take(p, m, 1),
            ands: and_levels(classes)
                .into_iter()
                .map(|count| (0..count).map(|_| and::take(p, lanes, 1)).collect())
                .collect(),
        },
        Scheme::Count => Combine::Count {
            wins: cmp.take_select(p, m, &win_selection()),
            mask: mask::take(p, lanes),
            cmp: cmp.take(p, lanes, 1),
        },
    };
    FlatMaterial { mask, combine }
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
    let lanes = batch * classes;
    if classes == 1 {
        return Ok(if lead {
            BitVec::ones(lanes)
        } else {
            BitVec::zeros(lanes)
        });
    }
    let prs = pairs(classes);
    let diff: Vec<Elem> = (0..batch)
        .flat_map(|b| prs.iter().map(move |(i, j)| (b, *i, *j)))
        .map(|(b, i, j)| x[b * classes + i].wrapping_sub(x[b * classes + j]))
        .collect();
    let c = mask::open(ctx, &diff, &mat.mask)?;
    match &mat.combine {
        Combine::Tree { cmp: m, ands } => {
            let less = cmp.less_than(ctx, &c, &[0], m)?.remove(0);
            and_tree(ctx, win_bits(lead, batch, classes, &less), ands)
        }
        Combine::Count {
            wins,
            mask: m2,
            cmp: m,
        } => {
            let sel = win_selection();
            let s = compare::select(cmp, ctx, &c, &[0], &sel, wins)?.times(
                0,
                &Form {
                    constant: vec![1; c.len()],
                    terms: vec![],
                },
            );
            let counts = win_counts(lead, batch, classes, &s);
            let c2 = mask::open(ctx, &counts, m2)?;
            let behind = cmp
                .less_than(ctx, &c2, &[(classes - 1) as Elem], m)?
                .remove(0);
            Ok(if lead { behind.not() } else { behind })
        }
    }
}

/// Candidate `(b, i)`'s win bits, as `K - 1` vectors over the lanes (the
/// `q`-th holds its result against its `q`-th opponent), from the XOR shares
/// of `s = [x_lo < x_hi]` per pair: `i = lo` wins with `!s`, `i = hi` with `s`.
fn win_bits(lead: bool, batch: usize, classes: usize, less: &BitVec) -> Vec<BitVec> {
    let per = classes * (classes - 1) / 2;
    (0..classes - 1)
        .map(|q| {
            let mut v = BitVec::zeros(batch * classes);
            for b in 0..batch {
                for i in 0..classes {
                    let j = if q < i { q } else { q + 1 };
                    let (lo, hi) = (i.min(j), i.max(j));
                    let s = less.get(b * per + pair_index(classes, lo, hi));
                    let bit = if i == lo { s ^ u64::from(lead) } else { s };
                    v.set(b * classes + i, bit);
                }
            }
            v
        })
        .collect()
}

/// Arithmetic shares of each candidate's number of wins, from the shares of
/// `s = [x_lo < x_hi]` per pair: `K - 1 - i` minus the `s` of its pairs as
/// `lo`, plus those as `hi`.
fn win_counts(lead: bool, batch: usize, classes: usize, s: &[Elem]) -> Vec<Elem> {
    let per = classes * (classes - 1) / 2;
    let mut counts = vec![0 as Elem; batch * classes];
    for b in 0..batch {
        for (k, (lo, hi)) in pairs(classes).into_iter().enumerate() {
            let v = s[b * per + k];
            let at = b * classes;
            counts[at + lo] = counts[at + lo].wrapping_sub(v);
            counts[at + hi] = counts[at + hi].wrapping_add(v);
        }
        if lead {
            for i in 0..classes {
                counts[b * classes + i] =
                    counts[b * classes + i].wrapping_add((classes - 1 - i) as Elem);
            }
        }
    }
    counts
}

/// ANDs each lane's win bits in a tree (one exchange per level).
fn and_tree(
    ctx: &mut Ctx<'_>,
    mut wins: Vec<BitVec>,
    ands: &[Vec<and::Triple>],
) -> Result<BitVec, ProtocolError> {
    let lead = ctx.lead();
    for level in ands {
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
/// `B K (K-1)/2` pairs, then (tree) one bit per lane for each of the `K - 2`
/// ANDs, or (count) a selection on the pairs and a comparison per lane.
pub(super) fn offline_bytes<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> u64 {
    let m = batch * pairs_count(classes);
    let lanes = batch * classes;
    match scheme(cmp, batch, classes) {
        Scheme::Tree => {
            let ands: usize = and_levels(classes).iter().sum();
            cmp.offline_bytes(m, 1) + ands as u64 * bit_bytes(lanes)
        }
        Scheme::Count => {
            cmp.select_offline_bytes(m, &win_selection()) + cmp.offline_bytes(lanes, 1)
        }
    }
}

/// `K (K-1) / 2`: the pairs of `K` classes.
fn pairs_count(classes: usize) -> usize {
    classes * classes.saturating_sub(1) / 2
}

/// The communication of [`onehot`].
pub(super) fn trace<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Trace {
    let lanes = batch * classes;
    let mut t = Trace::default();
    if classes < 2 {
        return t;
    }
    let m = batch * pairs_count(classes);
    t.append(mask::open_trace(m));
    match scheme(cmp, batch, classes) {
        Scheme::Tree => {
            t.append(cmp.trace(m, 1));
            for count in and_levels(classes) {
                t.append(Trace::exchange((2 * count * bytes_for(lanes)) as u64));
            }
        }
        Scheme::Count => {
            t.append(cmp.select_trace(m, &win_selection()));
            t.append(mask::open_trace(lanes).then(cmp.trace(lanes, 1)));
        }
    }
    t
}

/// Closed-form cost of [`onehot`] (see the module docs).
pub(super) fn cost<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Cost {
    match scheme(cmp, batch, classes) {
        Scheme::Tree => tree_cost(cmp, batch, classes),
        Scheme::Count => count_cost(cmp, batch, classes),
    }
}

/// The tree scheme's cost: the opening and comparison of the pairs, `K - 2`
/// ANDs over the lanes in `ceil(log2(K-1))` rounds.
fn tree_cost<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Cost {
    let lanes = batch * classes;
    let mut c = Cost::default();
    if classes > 1 {
        let p = batch * pairs_count(classes);
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

/// The count scheme's cost: the opening and selection of the pairs, the
/// opening and comparison of the counts.
fn count_cost<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Cost {
    let p = batch * pairs_count(classes);
    let lanes = batch * classes;
    mask::open_cost(p)
        .then(cmp.select_cost(p, &win_selection()))
        .then(mask::open_cost(lanes))
        .then(cmp.cost(lanes, 1))
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
