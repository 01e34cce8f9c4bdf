//! Clip (ReLU6, hardtanh, one-sided clamps) against the plaintext clip of the
//! truncated input, on bound edges and random values, with exact traffic,
//! for both comparison backends.

use cryptmed_prep::PrepSource;
use cryptmed_protocols::clip::{self, Bounds};
use cryptmed_protocols::cost::Cost;
use cryptmed_protocols::testing::run_pair;
use cryptmed_protocols::{Comparison, Ctx, Fss, Ppa};
use cryptmed_ring::Elem;
use cryptmed_share::{Prg, Seed};
use proptest::prelude::*;

const LIMIT: i64 = 1 << 62;

fn split(x: &[Elem], seed: u64) -> (Vec<Elem>, Vec<Elem>) {
    let mut prg = Prg::new(&Seed::from_u64(seed), 7);
    let s0 = prg.elems(x.len());
    (s0.clone(), cryptmed_ring::sub(x, &s0))
}

/// Bounds `lo`, `hi` at the output scale, thresholds exactly `<< k` at the input's.
fn bounds(lo: Option<i64>, hi: Option<i64>, k: u32) -> Bounds {
    let pair = |v: i64| ((v << k) as Elem, v as Elem);
    Bounds {
        lower: lo.map(pair),
        upper: hi.map(pair),
    }
}

/// The secure clip of `ys` (each truncated by `k`), after checking its traffic.
fn run_clip<C: Comparison>(cmp: &C, ys: &[i64], k: u32, b: Bounds, seed: u64) -> Vec<i64> {
    let (n, m) = (ys.len(), b.count());
    let y: Vec<Elem> = ys.iter().map(|v| *v as Elem).collect();
    let (y0, y1) = split(&y, seed);
    let run = run_pair(
        seed,
        |d| clip::deal(cmp, d, n, k, m),
        |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
            let mat = clip::take(cmp, p, n, k, m);
            clip::eval(cmp, ctx, &y0, k, b, &mat).unwrap()
        },
        |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
            let mat = clip::take(cmp, p, n, k, m);
            clip::eval(cmp, ctx, &y1, k, b, &mat).unwrap()
        },
    );
    let trace = clip::trace(cmp, n, m);
    let cost = clip::cost(cmp, n, m);
    assert_eq!(Cost::of(&trace), cost, "trace vs closed form");
    assert_eq!(run.provider_stats, trace.provider_stats());
    assert_eq!(run.client_stats, trace.client_stats());
    assert_eq!(run.offline_bytes as u64, clip::offline_bytes(cmp, n, k, m));
    cryptmed_ring::add(&run.provider, &run.client)
        .into_iter()
        .map(|v| v as i64)
        .collect()
}

/// Exact at and beyond the bounds; in between, the truncation may round up by one.
fn check<C: Comparison>(cmp: &C, ys: &[i64], k: u32, lo: Option<i64>, hi: Option<i64>, seed: u64) {
    let got = run_clip(cmp, ys, k, bounds(lo, hi, k), seed);
    for (y, g) in ys.iter().zip(&got) {
        let t = y >> k;
        let below = lo.is_some_and(|l| *y < l << k);
        let above = hi.is_some_and(|h| *y >= h << k);
        let want = match (below, above) {
            (true, _) => lo.unwrap_or_default(),
            (_, true) => hi.unwrap_or_default(),
            _ => t,
        };
        let ok = *g == want || (!below && !above && *g == t + 1 && hi.is_none_or(|h| t < h));
        assert!(
            ok,
            "{}: clip({y} >> {k}, {lo:?}, {hi:?}) = {g}, want {want}",
            cmp.name()
        );
    }
}

/// Values at, around and far from each bound (at the input's scale), and the extremes.
fn edges(k: u32, lo: i64, hi: i64) -> Vec<i64> {
    let mut v = vec![0, 1, -1, LIMIT - 1, -(LIMIT - 1), LIMIT / 2, -LIMIT / 2];
    for b in [lo, hi] {
        let t = b << k;
        v.extend([t, t - 1, t + 1, t - (1 << k), t + (1 << k), t * 2 - 1]);
    }
    v
}

#[test]
fn relu6_hardtanh_and_one_sided_clamps_on_their_edges() {
    // Bounds at 16 fractional bits: ReLU6 is [0, 6], hardtanh [-1, 1].
    let one = 1i64 << 16;
    for k in [0, 16] {
        for (lo, hi) in [(0, 6 * one), (-one, one), (-one / 4, 3 * one / 4)] {
            let ys = edges(k, lo, hi);
            check(&Ppa::default(), &ys, k, Some(lo), Some(hi), 3);
            check(&Ppa::default(), &ys, k, Some(lo), None, 4);
            check(&Ppa::default(), &ys, k, None, Some(hi), 5);
            check(&Fss, &ys, k, Some(lo), Some(hi), 6);
            check(&Fss, &ys, k, Some(lo), None, 7);
            check(&Fss, &ys, k, None, Some(hi), 8);
        }
    }
}

#[test]
fn relu6_costs_per_element() {
    // 16 bytes of opening, two comparisons of 11 bytes, two opened bits: 38.5 bytes, 6 rounds.
    let c = clip::cost(&Ppa::default(), 1024, 2);
    assert_eq!((c.bytes as f64 / 1024.0, c.rounds), (38.5, 6));
    let one_sided = clip::cost(&Ppa::default(), 1024, 1);
    assert_eq!(
        (one_sided.bytes as f64 / 1024.0, one_sided.rounds),
        (27.25, 6)
    );
    // Function secret sharing: the opening only, one key for both bounds.
    assert_eq!(clip::cost(&Fss, 1024, 2), Cost::new(16 * 1024, 1));
    assert_eq!(
        clip::offline_bytes(&Fss, 1, 16, 2),
        2 * (16 * 63 + 8 * 3 * 64) + 16 + 8 * 3
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn clip_random_full_range(
        ys in proptest::collection::vec(-(LIMIT / 2)..LIMIT / 2, 1..120),
        lo in -(1i64 << 20)..(1 << 20),
        width in 0i64..(1 << 21),
        k in prop_oneof![Just(0u32), Just(16u32), 1u32..24],
        seed in any::<u64>(),
    ) {
        check(&Ppa::default(), &ys, k, Some(lo), Some(lo + width), seed);
        check(&Fss, &ys, k, Some(lo), Some(lo + width), seed);
    }
}
