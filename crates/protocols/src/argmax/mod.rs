//! Label-only output: the index of the largest of `K` shared values,
//! revealed to the client alone.
//!
//! **Up to 64 classes** ([`flat`]): all `K(K-1)/2` pairwise comparisons run
//! at once from one opening (a tournament would need `log2 K` sequential
//! comparisons). Value `i` wins when it beats every `j` (`x_i >= x_j` for
//! later `j`, `x_i > x_j` for earlier `j`, so exactly one index wins, the
//! first maximum). The `K - 1` win bits of each candidate are ANDed in a tree
//! (`ceil(log2(K-1))` rounds), and the provider sends its shares of the
//! one-hot vector to the client, who alone learns the label. Rounds for 10
//! classes: 1 + 4 + 4 + 1 (one-way). Bytes for `B` records, with `P = B K
//! (K-1)/2` comparisons and `B K` lanes: the opening and comparison of `P`
//! values (`16 P + 88 ceil(P/8)` with `Ppa`), `K - 2` ANDs over the lanes
//! (`4 (K-2) ceil(BK/8)`) and the one-way one-hot (`ceil(BK/8)`). For one
//! record of 10 classes: 720 + 528 + 64 + 2 = 1314 bytes, 10 rounds.
//!
//! **More classes** (ImageNet's 1000: the all-pairs scheme would compare
//! 499,500 pairs, 14 MB per record): the classes split into `G` groups of
//! `g ~ (2K)^(1/3)` (the last padded with copies of its first value, which
//! lose every tie); the all-pairs argmax runs inside every group at once,
//! each group's maximum is its one-hot times its values ([`bitmul`], 1
//! round), the all-pairs argmax runs over the `G` maxima, and one AND of
//! the two one-hots (1 round) gives the first maximum overall (ties go to
//! the earlier group, then to the earlier class). For 1000 classes (`g =
//! 13`, `G = 77`): 8,932 comparisons instead of 499,500, 0.27 MB instead of
//! 14 MB, in 24 rounds instead of 16.

mod flat;

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_share::open::{open_bits, recv_bits, send_bits};

use crate::compare::Comparison;
use crate::cost::{Cost, Trace, bit_bytes};
use crate::{Ctx, ProtocolError, and, bitmul};

/// The most classes the all-pairs scheme handles alone.
pub const FLAT_MAX: usize = 64;

/// The grouping of `classes` values: `(g, G)`, or `None` for the all-pairs scheme.
pub fn groups(classes: usize) -> Option<(usize, usize)> {
    if classes <= FLAT_MAX {
        return None;
    }
    let g = ((2.0 * classes as f64).cbrt().round() as usize).max(2);
    Some((g, classes.div_ceil(g)))
}

/// This party's material for `batch` argmaxes over `classes` values.
pub struct ArgmaxMaterial<C: Comparison>(Scheme<C>);

enum Scheme<C: Comparison> {
    Flat(flat::FlatMaterial<C>),
    Grouped(Box<Grouped<C>>),
}

struct Grouped<C: Comparison> {
    within: flat::FlatMaterial<C>,
    maxima: bitmul::BitMulMaterial,
    across: flat::FlatMaterial<C>,
    both: and::Triple,
}

/// Dealer: material for `batch` argmaxes over `classes` values.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, batch: usize, classes: usize) {
    match groups(classes) {
        None => flat::deal(cmp, d, batch, classes),
        Some((g, n)) => {
            flat::deal(cmp, d, batch * n, g);
            bitmul::deal(d, batch * n * g);
            flat::deal(cmp, d, batch, n);
            and::deal(d, batch * n * g, 1);
        }
    }
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    batch: usize,
    classes: usize,
) -> ArgmaxMaterial<C> {
    ArgmaxMaterial(match groups(classes) {
        None => Scheme::Flat(flat::take(cmp, p, batch, classes)),
        Some((g, n)) => Scheme::Grouped(Box::new(Grouped {
            within: flat::take(cmp, p, batch * n, g),
            maxima: bitmul::take(p, batch * n * g),
            across: flat::take(cmp, p, batch, n),
            both: and::take(p, batch * n * g, 1),
        })),
    })
}

/// The labels (client) or `None` (provider), for `x` holding `batch` rows of `classes` values.
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    classes: usize,
    mat: &ArgmaxMaterial<C>,
) -> Result<Option<Vec<usize>>, ProtocolError> {
    let batch = x.len() / classes.max(1);
    let onehot = match &mat.0 {
        Scheme::Flat(m) => flat::onehot(cmp, ctx, x, classes, m)?,
        Scheme::Grouped(m) => grouped(cmp, ctx, x, classes, m)?,
    };
    let lanes = batch * classes;
    if ctx.lead() {
        send_bits(ctx.ch, &[&onehot])?;
        ctx.ch.flush().map_err(ProtocolError::from)?;
        return Ok(None);
    }
    let theirs = recv_bits(ctx.ch, &[lanes])?.remove(0);
    let full = onehot.xor(&theirs);
    Ok(Some(
        (0..batch)
            .map(|b| {
                (0..classes)
                    .find(|i| full.get(b * classes + i) == 1)
                    .unwrap_or(0)
            })
            .collect(),
    ))
}

/// The grouped scheme's one-hot over `batch * classes` lanes.
fn grouped<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    classes: usize,
    m: &Grouped<C>,
) -> Result<BitVec, ProtocolError> {
    let (g, n) = groups(classes).unwrap_or((classes, 1));
    let batch = x.len() / classes;
    // Records laid out as `n` groups of `g`; a padding slot copies its group's first value.
    let source = |b: usize, q: usize| b * classes + if q < classes { q } else { q / g * g };
    let padded: Vec<Elem> = (0..batch)
        .flat_map(|b| (0..n * g).map(move |q| source(b, q)))
        .map(|i| x[i])
        .collect();
    let within = flat::onehot(cmp, ctx, &padded, g, &m.within)?;
    let picked = bitmul::eval(ctx, &within, &padded, &m.maxima)?;
    let maxima: Vec<Elem> = picked
        .chunks_exact(g)
        .map(|c| c.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
        .collect();
    let across = flat::onehot(cmp, ctx, &maxima, n, &m.across)?;
    let spread = BitVec::from_bools(
        &(0..batch * n * g)
            .map(|l| across.get(l / g) == 1)
            .collect::<Vec<_>>(),
    );
    let lead = ctx.lead();
    let opened = open_bits(
        ctx.ch,
        &and::masked(&within, &[&spread], &m.both)
            .iter()
            .collect::<Vec<_>>(),
    )?;
    let both = and::finish(lead, &opened[0], &opened[1..2], &m.both).remove(0);
    // Drop the padding slots.
    Ok(BitVec::from_bools(
        &(0..batch)
            .flat_map(|b| (0..classes).map(move |q| (b, q)))
            .map(|(b, q)| both.get(b * n * g + q) == 1)
            .collect::<Vec<_>>(),
    ))
}

/// The communication of [`eval`].
pub fn trace<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Trace {
    let reveal = Trace::provider_to_client(bytes_for(batch * classes) as u64);
    match groups(classes) {
        None => flat::trace(cmp, batch, classes).then(reveal),
        Some((g, n)) => {
            let lanes = batch * n * g;
            flat::trace(cmp, batch * n, g)
                .then(bitmul::trace(lanes))
                .then(flat::trace(cmp, batch, n))
                .then(Trace::exchange(2 * bytes_for(lanes) as u64))
                .then(reveal)
        }
    }
}

/// Closed-form cost of [`eval`] (see the module docs).
pub fn cost<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> Cost {
    let reveal = Cost::new(bit_bytes(batch * classes), 1);
    match groups(classes) {
        None => flat::cost(cmp, batch, classes).then(reveal),
        Some((g, n)) => {
            let lanes = batch * n * g;
            flat::cost(cmp, batch * n, g)
                .then(bitmul::cost(lanes))
                .then(flat::cost(cmp, batch, n))
                .then(Cost::exchange(2 * bit_bytes(lanes)))
                .then(reveal)
        }
    }
}

/// Closed-form dealer bytes of [`deal`].
pub fn offline_bytes<C: Comparison>(cmp: &C, batch: usize, classes: usize) -> u64 {
    match groups(classes) {
        None => flat::offline_bytes(cmp, batch, classes),
        Some((g, n)) => {
            let lanes = batch * n * g;
            flat::offline_bytes(cmp, batch * n, g)
                + bitmul::offline_bytes(lanes)
                + flat::offline_bytes(cmp, batch, n)
                + bit_bytes(lanes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptmed_share::Seed;

    #[test]
    fn dealer_bytes_match_the_closed_form() {
        let cmp = crate::Ppa::DEFAULT;
        for (batch, classes) in [
            (1, 1),
            (1, 2),
            (3, 10),
            (2, 17),
            (1, 64),
            (2, 65),
            (1, 1000),
        ] {
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
    fn thousand_classes_group_as_documented() {
        assert_eq!(groups(64), None);
        assert_eq!(groups(1000), Some((13, 77)));
        let c = cost(&crate::Ppa::DEFAULT, 1, 1000);
        assert_eq!((c.bytes, c.rounds), (266_649, 24));
    }
}
