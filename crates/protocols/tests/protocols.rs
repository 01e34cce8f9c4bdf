//! Every protocol against the plaintext reference, with exact traffic, for
//! both comparison backends ([`Ppa`] and [`Fss`]): the checks are generic over
//! [`Comparison`] and run once per backend.

use cryptmed_prep::PrepSource;
use cryptmed_protocols::cost::{Cost, Trace};
use cryptmed_protocols::linear::{self, Bilinear, Holder};
use cryptmed_protocols::testing::{PairRun, run_pair};
use cryptmed_protocols::{
    Comparison, Ctx, Fss, Ppa, argmax, mask, mul, pool, relu, reveal, select, trunc,
};
use cryptmed_ring::Elem;
use cryptmed_ring::kernels::Conv2dGeom;
use cryptmed_share::{Prg, Seed};
use proptest::prelude::*;

const LIMIT: i64 = 1 << 62;

/// Splits `x` into two random additive shares.
fn split(x: &[Elem], seed: u64) -> (Vec<Elem>, Vec<Elem>) {
    let mut prg = Prg::new(&Seed::from_u64(seed), 99);
    let s0 = prg.elems(x.len());
    let s1 = cryptmed_ring::sub(x, &s0);
    (s0, s1)
}

/// Measured traffic equals the trace, and both equal the closed-form cost.
fn assert_cost<P, C>(run: &PairRun<P, C>, trace: &Trace, cost: Cost) {
    assert_trace(run, trace);
    assert_eq!(Cost::of(trace), cost, "trace vs closed form");
    let (p, c) = (run.provider_stats, run.client_stats);
    assert_eq!(p.bytes_sent + p.bytes_recv, cost.bytes, "measured bytes");
    assert_eq!(c.bytes_sent + c.bytes_recv, cost.bytes, "measured bytes");
    assert_eq!(p.rounds.max(c.rounds), cost.rounds, "measured rounds");
}

fn assert_trace<P, C>(run: &PairRun<P, C>, trace: &Trace) {
    assert_eq!(
        run.provider_stats,
        trace.provider_stats(),
        "provider traffic vs trace"
    );
    assert_eq!(
        run.client_stats,
        trace.client_stats(),
        "client traffic vs trace"
    );
}

fn edge_values(k: u32) -> Vec<i64> {
    let mut v = vec![
        0,
        1,
        -1,
        2,
        -2,
        LIMIT - 1,
        -(LIMIT - 1),
        LIMIT / 2,
        -LIMIT / 2,
    ];
    for s in [k, k + 1, 16, 32, 48, 61] {
        if s < 62 {
            let p = 1i64 << s;
            v.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
        }
    }
    v
}

fn run_relu<C: Comparison>(cmp: &C, ys: &[i64], k: u32, seed: u64) -> Vec<i64> {
    let n = ys.len();
    let y: Vec<Elem> = ys.iter().map(|v| *v as Elem).collect();
    let (y0, y1) = split(&y, seed);
    let run = run_pair(
        seed,
        |d| relu::deal(cmp, d, n, k),
        |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
            let m = relu::take(cmp, p, n, k);
            relu::eval(cmp, ctx, &y0, k, &m).unwrap()
        },
        |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource| {
            let m = relu::take(cmp, p, n, k);
            relu::eval(cmp, ctx, &y1, k, &m).unwrap()
        },
    );
    assert_cost(&run, &relu::trace(cmp, n), relu::cost(cmp, n));
    assert_eq!(
        run.offline_bytes as u64,
        relu::offline_bytes(cmp, n, k),
        "{} relu dealer bytes",
        cmp.name()
    );
    cryptmed_ring::add(&run.provider, &run.client)
        .into_iter()
        .map(|v| v as i64)
        .collect()
}

fn check_relu<C: Comparison>(cmp: &C, ys: &[i64], k: u32, seed: u64) {
    let got = run_relu(cmp, ys, k, seed);
    for (y, g) in ys.iter().zip(&got) {
        let want = (y >> k).max(0);
        assert!(
            *g == want || (*g == want + 1 && *y >= 0),
            "{}: relu({y} >> {k}) = {g}, want {want}",
            cmp.name()
        );
    }
}

#[test]
fn relu_edges_without_and_with_truncation() {
    for k in [0, 1, 16, 20, 40, 61] {
        check_relu(&Ppa::default(), &edge_values(k), k, 1);
        check_relu(&Fss, &edge_values(k), k, 2);
    }
}

#[test]
fn relu_exact_without_truncation() {
    let ys = edge_values(0);
    for got in [
        run_relu(&Ppa::default(), &ys, 0, 5),
        run_relu(&Fss, &ys, 0, 6),
    ] {
        for (y, g) in ys.iter().zip(&got) {
            assert_eq!(*g, (*y).max(0));
        }
    }
}

/// The target: ReLU at most 17 online bytes per element in one
/// round with function secret sharing; its dealer bytes in closed form.
#[test]
fn fss_relu_is_one_round_of_16_bytes() {
    for n in [1usize, 7, 8, 1024, 4099] {
        let c = relu::cost(&Fss, n);
        assert_eq!(c, Cost::new(16 * n as u64, 1));
        assert_eq!(Cost::of(&relu::trace(&Fss, n)), c);
        // Keys of 63 levels with a 3-element payload (2 without truncation)
        // to both parties, plus the client's corrections.
        let key = |w: u64| 16 * 63 + 8 * w * 64;
        assert_eq!(
            relu::offline_bytes(&Fss, n, 16),
            n as u64 * (2 * key(3) + 16 + 8 * 3)
        );
        assert_eq!(
            relu::offline_bytes(&Fss, n, 0),
            n as u64 * (2 * key(2) + 8 * 2)
        );
    }
    assert_eq!(relu::offline_bytes(&Fss, 1, 16), 5128);
    assert_eq!(relu::offline_bytes(&Fss, 1, 0), 4080);
}

#[test]
fn relu_cost_per_element_meets_target() {
    // 1024 elements: bytes both ways per element and rounds.
    let t = relu::trace(&Ppa::default(), 1024);
    let per = t.bytes() as f64 / 1024.0;
    assert!(per <= 120.0, "{per} bytes per ReLU");
    assert!(t.rounds() <= 9, "{} rounds", t.rounds());
    assert_eq!(t.rounds(), 6);
    // The documented closed form: 16 n + 90 ceil(n/8) bytes, 27.25 per element.
    assert_eq!(t.bytes(), 16 * 1024 + 90 * 128);
}

#[test]
fn closed_form_costs_match_the_traces() {
    for n in [1usize, 2, 7, 8, 9, 63, 64, 65, 1000, 4099] {
        for chunk in 1..=6 {
            let cmp = Ppa::new(chunk);
            let leaves = 63usize.div_ceil(chunk as usize) as u64;
            for k in 1..=3usize {
                let c = cmp.cost(n, k);
                assert_eq!(
                    Cost::of(&cmp.trace(n, k)),
                    c,
                    "ppa chunk {chunk} n {n} k {k}"
                );
                assert_eq!(
                    c.bytes,
                    2 * k as u64 * (3 * leaves - 4) * n.div_ceil(8) as u64
                );
            }
        }
        let cmp = Ppa::default();
        assert_eq!(cmp.cost(n, 1), Cost::new(88 * n.div_ceil(8) as u64, 4));
        let relu = Cost::new(16 * n as u64 + 90 * n.div_ceil(8) as u64, 6);
        assert_eq!(relu::cost(&cmp, n), relu);
        assert_eq!(Cost::of(&relu::trace(&cmp, n)), relu);
        assert_eq!(Cost::of(&trunc::trace(n)), Cost::new(16 * n as u64, 1));
        assert_eq!(trunc::cost(n), Cost::new(16 * n as u64, 1));
        assert_eq!(Cost::of(&mul::trace(n)), Cost::new(32 * n as u64, 1));
        assert_eq!(mul::cost(n), Cost::new(32 * n as u64, 1));
        let sel = Cost::new(2 * n.div_ceil(8) as u64, 1);
        assert_eq!((Cost::of(&select::trace(n)), select::cost(n)), (sel, sel));
        let rev = Cost::new(8 * n as u64, 1);
        assert_eq!((Cost::of(&reveal::trace(n)), reveal::cost(n)), (rev, rev));
        // Max pooling over n windows of k x k: k^2 - 1 comparisons per window.
        for k in [2usize, 3] {
            let sizes = vec![k * k; n];
            let c = pool::cost(&cmp, &sizes);
            assert_eq!(Cost::of(&pool::trace(&cmp, &sizes)), c);
            assert_eq!(
                c.rounds,
                6 * (k * k).next_power_of_two().trailing_zeros() as u64
            );
            if n % 8 == 0 {
                assert_eq!(
                    c.bytes * 4,
                    109 * (k * k - 1) as u64 * n as u64,
                    "27.25 per comparison"
                );
            }
        }
        // Argmax: n records of 10 classes.
        let c = argmax::cost(&cmp, n, 10);
        assert_eq!(Cost::of(&argmax::trace(&cmp, n, 10)), c);
        let (p, lanes) = (45 * n as u64, (10 * n).div_ceil(8) as u64);
        assert_eq!(
            c,
            Cost::new(16 * p + 88 * p.div_ceil(8) + 32 * lanes + lanes, 10)
        );
    }
    assert_eq!(argmax::cost(&Ppa::default(), 1, 10), Cost::new(1314, 10));
    for classes in 1..=17 {
        for batch in [1usize, 3, 8] {
            let cmp = Ppa::default();
            assert_eq!(
                Cost::of(&argmax::trace(&cmp, batch, classes)),
                argmax::cost(&cmp, batch, classes),
                "argmax {batch} x {classes}"
            );
            assert_eq!(
                Cost::of(&argmax::trace(&Fss, batch, classes)),
                argmax::cost(&Fss, batch, classes),
                "fss argmax {batch} x {classes}"
            );
        }
    }
}

/// Function secret sharing: nothing online beyond the openings, so every
/// non-linear step is its openings (16 bytes per opened element, 1 round
/// each); the dealer's keys in closed form.
#[test]
fn fss_closed_form_costs() {
    let cmp = Fss;
    for n in [1usize, 2, 7, 8, 9, 63, 64, 65, 1000, 4099] {
        let nb = n as u64;
        for k in 1..=3usize {
            assert_eq!(cmp.cost(n, k), Cost::default());
            assert_eq!(Cost::of(&cmp.trace(n, k)), Cost::default());
            // One 63-bit key with a one-bit payload per value, whatever k.
            assert_eq!(
                cmp.offline_bytes(n, k),
                2 * 1016 * nb + n.div_ceil(8) as u64
            );
        }
        assert_eq!(relu::cost(&cmp, n), Cost::new(16 * nb, 1));
        // Max pooling: one round per tournament level, 16 bytes per comparison.
        for k in [2usize, 3] {
            let sizes = vec![k * k; n];
            let c = pool::cost(&cmp, &sizes);
            assert_eq!(Cost::of(&pool::trace(&cmp, &sizes)), c);
            let levels = (k * k).next_power_of_two().trailing_zeros() as u64;
            assert_eq!(c, Cost::new(16 * (k * k - 1) as u64 * nb, levels));
            assert_eq!(
                pool::offline_bytes(&cmp, &sizes),
                (k * k - 1) as u64 * nb * (2 * 2032 + 16)
            );
        }
        // Argmax over 10 classes counts wins: two openings (pairs, then counts).
        let c = argmax::cost(&cmp, n, 10);
        assert_eq!(Cost::of(&argmax::trace(&cmp, n, 10)), c);
        let reveal = (10 * n).div_ceil(8) as u64;
        assert_eq!(c, Cost::new(16 * 45 * nb + 16 * 10 * nb + reveal, 3));
        // Two classes: one comparison, nothing to combine.
        assert_eq!(
            argmax::cost(&cmp, n, 2),
            Cost::new(16 * nb + (2 * n).div_ceil(8) as u64, 2)
        );
    }
    let g = Conv2dGeom {
        in_ch: 3,
        in_h: 10,
        in_w: 9,
        out_ch: 4,
        kernel: [3, 3],
        stride: [2, 1],
        pads: [1, 1, 0, 1],
        dilation: [1, 1],
        groups: 1,
    };
    for op in [Bilinear::Dense { rows: 5, cols: 9 }, Bilinear::Conv(g)] {
        assert_eq!(Cost::of(&linear::trace(&op, 3)), linear::cost(&op, 3));
        assert_eq!(linear::cost(&op, 3).bytes, 24 * op.in_len() as u64);
        assert_eq!(Cost::of(&linear::setup_trace(&op)), linear::setup_cost(&op));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn relu_random_full_range(ys in proptest::collection::vec(-(LIMIT - 1)..LIMIT, 1..150), seed in any::<u64>(), k in prop_oneof![Just(0u32), Just(16u32), 1u32..40]) {
        check_relu(&Ppa::default(), &ys, k, seed);
        check_relu(&Fss, &ys, k, seed);
    }

    #[test]
    fn less_than_many_thresholds(xs in proptest::collection::vec(-(LIMIT - 1)..LIMIT, 1..80), ts in proptest::collection::vec(-(LIMIT - 1)..LIMIT, 1..6), seed in any::<u64>(), chunk in 1u32..=6) {
        check_less_than(&Ppa::new(chunk), xs.clone(), ts.clone(), seed)?;
        check_less_than(&Fss, xs, ts, seed)?;
    }

    #[test]
    fn truncation_is_exact_to_one_ulp(ys in proptest::collection::vec(-(LIMIT - 1)..LIMIT, 1..100), k in 1u32..48, seed in any::<u64>()) {
        let n = ys.len();
        let y: Vec<Elem> = ys.iter().map(|v| *v as Elem).collect();
        let (y0, y1) = split(&y, seed);
        let run = run_pair(seed, |d| trunc::deal(d, n, k),
            |ctx, p| { let m = trunc::take(p, n); trunc::eval(ctx, &y0, k, &m).unwrap() },
            |ctx, p| { let m = trunc::take(p, n); trunc::eval(ctx, &y1, k, &m).unwrap() });
        assert_cost(&run, &trunc::trace(n), trunc::cost(n));
        prop_assert_eq!(run.offline_bytes as u64, trunc::offline_bytes(n));
        for (v, g) in ys.iter().zip(cryptmed_ring::add(&run.provider, &run.client)) {
            let want = v >> k;
            prop_assert!(g as i64 == want || g as i64 == want + 1, "{} >> {} = {}", v, k, g as i64);
        }
    }
}

/// XOR shares of `[x < t]` for many thresholds from one opening, at every
/// threshold's edges and the extremes of the allowed range, exact traffic.
fn check_less_than<C: Comparison>(
    cmp: &C,
    mut xs: Vec<i64>,
    mut ts: Vec<i64>,
    seed: u64,
) -> Result<(), TestCaseError> {
    ts.extend([0, LIMIT - 1, -(LIMIT - 1)]);
    for t in ts.clone() {
        xs.extend([t - 1, t, t + 1].into_iter().filter(|v| v.abs() < LIMIT));
    }
    xs.extend([0, 1, -1, LIMIT - 1, -(LIMIT - 1)]);
    let n = xs.len();
    let x: Vec<Elem> = xs.iter().map(|v| *v as Elem).collect();
    let (x0, x1) = split(&x, seed);
    let thr: Vec<Elem> = ts.iter().map(|v| *v as Elem).collect();
    let k = thr.len();
    let body = |ctx: &mut Ctx<'_>, p: &mut dyn PrepSource, xs: &[Elem]| {
        let m = mask::take(p, n);
        let cm = cmp.take(p, n, k);
        let c = mask::open(ctx, xs, &m).unwrap();
        cmp.less_than(ctx, &c, &thr, &cm).unwrap()
    };
    let run = run_pair(
        seed,
        |d| {
            let r = mask::deal(d, n);
            cmp.deal(d, &r, k);
        },
        |ctx, p| body(ctx, p, &x0),
        |ctx, p| body(ctx, p, &x1),
    );
    assert_cost(
        &run,
        &mask::open_trace(n).then(cmp.trace(n, k)),
        mask::open_cost(n).then(cmp.cost(n, k)),
    );
    for (ti, t) in ts.iter().enumerate() {
        let bits = run.provider[ti].xor(&run.client[ti]);
        for (i, xv) in xs.iter().enumerate() {
            prop_assert_eq!(
                bits.get(i),
                u64::from(xv < t),
                "{}: x={} t={}",
                cmp.name(),
                xv,
                t
            );
        }
    }
    let mut d = cryptmed_prep::Dealer::new(&Seed::from_u64(1), &Seed::from_u64(2));
    cmp.deal(&mut d, &x, k);
    prop_assert_eq!(
        d.pending_bytes() as u64,
        cmp.offline_bytes(n, k),
        "dealer bytes"
    );
    Ok(())
}

#[test]
fn truncation_edges() {
    let ys = edge_values(16);
    let n = ys.len();
    let y: Vec<Elem> = ys.iter().map(|v| *v as Elem).collect();
    let (y0, y1) = split(&y, 3);
    let run = run_pair(
        3,
        |d| trunc::deal(d, n, 16),
        |ctx, p| {
            let m = trunc::take(p, n);
            trunc::eval(ctx, &y0, 16, &m).unwrap()
        },
        |ctx, p| {
            let m = trunc::take(p, n);
            trunc::eval(ctx, &y1, 16, &m).unwrap()
        },
    );
    assert_cost(&run, &trunc::trace(n), trunc::cost(n));
    for (v, g) in ys
        .iter()
        .zip(cryptmed_ring::add(&run.provider, &run.client))
    {
        let want = v >> 16;
        assert!(
            g as i64 == want || g as i64 == want + 1,
            "{v} -> {}",
            g as i64
        );
    }
}

#[test]
fn maxpool_matches_clear_max_with_ties_and_odd_windows() {
    let mut prg = Prg::new(&Seed::from_u64(8), 0);
    let mut xs: Vec<i64> = prg.elems(60).iter().map(|v| (*v as i64) >> 3).collect();
    xs[1] = xs[0]; // a tie
    xs[5] = LIMIT / 2 - 1;
    xs[6] = -(LIMIT / 2) + 1;
    let sizes = [4, 3, 1, 9, 43];
    check_maxpool(&Ppa::default(), &xs, &sizes, 4);
    check_maxpool(&Fss, &xs, &sizes, 4);
}

/// Values over the whole allowed range, with the extremes and small values
/// drawn often so that ties and all-equal windows are common.
fn allowed_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => -(LIMIT - 1)..LIMIT,
        1 => prop::sample::select(vec![0i64, 1, -1, LIMIT - 1, -(LIMIT - 1)]),
    ]
}

/// Runs max pooling over consecutive windows of the given sizes and checks the exact max.
fn check_maxpool<C: Comparison>(cmp: &C, values: &[i64], sizes: &[usize], seed: u64) {
    let mut windows = Vec::new();
    let mut at = 0;
    for s in sizes {
        windows.push((at..at + s).collect::<Vec<usize>>());
        at += s;
    }
    let x: Vec<Elem> = values.iter().map(|v| *v as Elem).collect();
    let (x0, x1) = split(&x, seed);
    let run = run_pair(
        seed,
        |d| pool::deal(cmp, d, sizes),
        |ctx, p| {
            let m = pool::take(cmp, p, sizes);
            pool::eval(cmp, ctx, &x0, &windows, &m).unwrap()
        },
        |ctx, p| {
            let m = pool::take(cmp, p, sizes);
            pool::eval(cmp, ctx, &x1, &windows, &m).unwrap()
        },
    );
    assert_cost(&run, &pool::trace(cmp, sizes), pool::cost(cmp, sizes));
    assert_eq!(
        run.offline_bytes as u64,
        pool::offline_bytes(cmp, sizes),
        "{} pool dealer bytes",
        cmp.name()
    );
    let got = cryptmed_ring::add(&run.provider, &run.client);
    for (w, g) in windows.iter().zip(got) {
        let want = w.iter().map(|i| values[*i]).max().unwrap();
        assert_eq!(
            g as i64,
            want,
            "{}: window {:?}",
            cmp.name(),
            w.iter().map(|i| values[*i]).collect::<Vec<_>>()
        );
    }
}

#[test]
fn maxpool_named_edges() {
    let m = LIMIT - 1;
    let windows: Vec<Vec<i64>> = vec![
        vec![m, -m, m, -m],   // the extremes, tied
        vec![-m, -m, -m, -m], // all equal, most negative
        vec![7; 9],           // all equal, 3 x 3
        vec![-m, m],          // largest difference
        vec![m, m - 1, -m, -m + 1],
        vec![0, -1, 1, 0], // one unit apart
        vec![-1, -1, -2, -1],
        vec![5], // a single cell
    ];
    let sizes: Vec<usize> = windows.iter().map(Vec::len).collect();
    check_maxpool(&Ppa::default(), &windows.concat(), &sizes, 12);
    check_maxpool(&Fss, &windows.concat(), &sizes, 13);
}

fn run_argmax<C: Comparison>(cmp: &C, rows: &[Vec<i64>], seed: u64) -> Vec<usize> {
    let classes = rows[0].len();
    let batch = rows.len();
    let x: Vec<Elem> = rows.iter().flatten().map(|v| *v as Elem).collect();
    let (x0, x1) = split(&x, seed);
    let run = run_pair(
        seed,
        |d| argmax::deal(cmp, d, batch, classes),
        |ctx, p| {
            let m = argmax::take(cmp, p, batch, classes);
            argmax::eval(cmp, ctx, &x0, classes, &m).unwrap()
        },
        |ctx, p| {
            let m = argmax::take(cmp, p, batch, classes);
            argmax::eval(cmp, ctx, &x1, classes, &m).unwrap()
        },
    );
    assert_cost(
        &run,
        &argmax::trace(cmp, batch, classes),
        argmax::cost(cmp, batch, classes),
    );
    assert_eq!(
        run.offline_bytes as u64,
        argmax::offline_bytes(cmp, batch, classes),
        "{} argmax dealer bytes",
        cmp.name()
    );
    assert!(
        run.provider.is_none(),
        "the provider must not learn the label"
    );
    run.client.unwrap()
}

#[test]
fn argmax_picks_first_maximum() {
    for classes in [1usize, 2, 3, 5, 10] {
        let mut prg = Prg::new(&Seed::from_u64(classes as u64), 0);
        let mut rows: Vec<Vec<i64>> = (0..7)
            .map(|_| {
                prg.elems(classes)
                    .iter()
                    .map(|v| (*v as i64) >> 20)
                    .collect()
            })
            .collect();
        if classes > 2 {
            rows[0][2] = rows[0].iter().copied().max().unwrap(); // tie with an earlier max
            rows[1] = vec![0; classes];
        }
        for got in [
            run_argmax(&Ppa::default(), &rows, 11),
            run_argmax(&Fss, &rows, 11),
        ] {
            for (row, g) in rows.iter().zip(got) {
                let max = row.iter().max().unwrap();
                let want = row.iter().position(|v| v == max).unwrap();
                assert_eq!(g, want, "{row:?}");
            }
        }
    }
}

/// Many classes (the grouped scheme): ties inside a group, across groups and
/// in the padded last group all go to the first maximum, as in plaintext.
#[test]
fn argmax_over_many_classes_picks_the_first_maximum() {
    let m = LIMIT / 2 - 1;
    for classes in [65usize, 100, 1000] {
        let mut prg = Prg::new(&Seed::from_u64(classes as u64), 3);
        let random: Vec<i64> = prg
            .elems(classes)
            .iter()
            .map(|v| (*v as i64) >> 22)
            .collect();
        let mut tied_groups = random.clone();
        let top = *tied_groups.iter().max().unwrap();
        tied_groups[classes / 2] = top; // the same maximum in a later group
        tied_groups[classes - 1] = top; // and in the (padded) last group
        let mut last = vec![-m; classes];
        last[classes - 1] = m;
        let mut first = vec![0; classes];
        first[0] = 1;
        let rows = vec![
            random,
            tied_groups,
            last,
            first,
            vec![-m; classes],
            vec![m; classes],
        ];
        for got in [
            run_argmax(&Ppa::default(), &rows, 21),
            run_argmax(&Fss, &rows, 21),
        ] {
            for (row, g) in rows.iter().zip(got) {
                let max = row.iter().max().unwrap();
                assert_eq!(
                    g,
                    row.iter().position(|v| v == max).unwrap(),
                    "{classes} classes"
                );
            }
        }
    }
}

/// The reusable-mask protocol is exact in the ring, so weights, bias and
/// inputs are drawn uniformly from all of Z_2^64 (every value is allowed).
fn check_linear(op: Bilinear, batch: usize, seed: u64) {
    let mut prg = Prg::new(&Seed::from_u64(seed), 1);
    let w: Vec<Elem> = prg.elems(op.weight_len());
    let bias: Vec<Elem> = prg.elems(op.out_len());
    let x: Vec<Elem> = prg.elems(batch * op.in_len());
    let (x0, x1) = split(&x, seed);
    let bias_ref = match op {
        Bilinear::Conv(g) => bias[..g.out_ch].to_vec(),
        _ => bias.clone(),
    };
    let run = run_pair(
        seed,
        |d| {
            let b = linear::deal_setup(d, &op);
            linear::deal(d, &op, &b, batch);
        },
        |ctx, p| {
            let b = linear::take_setup(p, &op).unwrap();
            linear::send_masked_weights(ctx, &w, &b).unwrap();
            let m = linear::take(p, &op, batch, None);
            linear::eval(
                ctx,
                &op,
                Holder::Provider {
                    weights: &w,
                    bias: Some(&bias_ref),
                },
                &x0,
                &m,
            )
            .unwrap()
        },
        |ctx, p| {
            assert!(linear::take_setup(p, &op).is_none());
            let mw = linear::recv_masked_weights(ctx, &op).unwrap();
            let m = linear::take(p, &op, batch, Some(&mw));
            linear::eval(ctx, &op, Holder::Client, &x1, &m).unwrap()
        },
    );
    assert_cost(
        &run,
        &linear::setup_trace(&op).then(linear::trace(&op, batch)),
        // One round in all: each party sends exactly once (the provider its
        // masked weights, the client its masked input), see `cost::stats`.
        Cost::new(
            linear::setup_cost(&op).bytes + linear::cost(&op, batch).bytes,
            1,
        ),
    );
    assert_eq!(
        run.offline_bytes as u64,
        linear::offline_bytes(&op, batch),
        "linear dealer bytes"
    );
    let got = cryptmed_ring::add(&run.provider, &run.client);
    let mut want: Vec<Elem> = match op {
        Bilinear::Conv(g) => x
            .chunks_exact(op.in_len())
            .flat_map(|r| naive_conv(&g, &w, r))
            .collect(),
        _ => op.apply_batch(&w, &x),
    };
    let per = op.out_len() / bias_ref.len();
    for rec in want.chunks_exact_mut(op.out_len()) {
        for (i, v) in rec.iter_mut().enumerate() {
            *v = v.wrapping_add(bias_ref[i / per]);
        }
    }
    assert_eq!(got, want);
}

/// Direct convolution, independent of the ring kernels: `y[o, i, j] = sum
/// w[o, c, a, b] x[c, i s0 + a d0 - top, j s1 + b d1 - left]`, zero outside.
fn naive_conv(g: &Conv2dGeom, w: &[Elem], x: &[Elem]) -> Vec<Elem> {
    let [kh, kw] = g.kernel;
    let mut y = Vec::new();
    for o in 0..g.out_ch {
        for i in 0..g.out_h() {
            for j in 0..g.out_w() {
                let mut acc: Elem = 0;
                for c in 0..g.in_ch {
                    for a in 0..kh {
                        for b in 0..kw {
                            let r = (i * g.stride[0] + a * g.dilation[0]) as i64 - g.pads[0] as i64;
                            let q = (j * g.stride[1] + b * g.dilation[1]) as i64 - g.pads[1] as i64;
                            if r < 0 || q < 0 || r >= g.in_h as i64 || q >= g.in_w as i64 {
                                continue;
                            }
                            let wv = w[((o * g.in_ch + c) * kh + a) * kw + b];
                            let xv = x[(c * g.in_h + r as usize) * g.in_w + q as usize];
                            acc = acc.wrapping_add(wv.wrapping_mul(xv));
                        }
                    }
                }
                y.push(acc);
            }
        }
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn maxpool_random_windows(
        windows in proptest::collection::vec(proptest::collection::vec(allowed_value(), 1..=10), 1..12),
        seed in any::<u64>(),
    ) {
        let sizes: Vec<usize> = windows.iter().map(Vec::len).collect();
        check_maxpool(&Ppa::default(), &windows.concat(), &sizes, seed);
        check_maxpool(&Fss, &windows.concat(), &sizes, seed);
    }

    #[test]
    fn argmax_random_rows(
        classes in 1usize..=12,
        batch in 1usize..=4,
        values in proptest::collection::vec(allowed_value(), 48),
        seed in any::<u64>(),
    ) {
        let rows: Vec<Vec<i64>> = (0..batch)
            .map(|b| (0..classes).map(|c| values[(b * classes + c) % values.len()]).collect())
            .collect();
        for got in [run_argmax(&Ppa::default(), &rows, seed), run_argmax(&Fss, &rows, seed)] {
            for (row, g) in rows.iter().zip(got) {
                let max = row.iter().max().unwrap();
                prop_assert_eq!(g, row.iter().position(|v| v == max).unwrap(), "{:?}", row);
            }
        }
    }

    #[test]
    fn linear_random_shapes(
        rows in 1usize..12,
        cols in 1usize..20,
        in_ch in 1usize..=3,
        out_ch in 1usize..=3,
        hw in (1usize..=7, 1usize..=7),
        kernel in (1usize..=3, 1usize..=3),
        stride in (1usize..=3, 1usize..=3),
        pads in (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2),
        batch in 1usize..=3,
        seed in any::<u64>(),
    ) {
        check_linear(Bilinear::Dense { rows, cols }, batch, seed);
        check_linear(Bilinear::Diagonal { len: cols }, batch, seed);
        let g = Conv2dGeom {
            in_ch,
            in_h: hw.0.max(kernel.0),
            in_w: hw.1.max(kernel.1),
            out_ch,
            kernel: [kernel.0, kernel.1],
            stride: [stride.0, stride.1],
            pads: [pads.0, pads.1, pads.2, pads.3],
            dilation: [1, 1],
            groups: 1,
        };
        check_linear(Bilinear::Conv(g), batch, seed);
    }
}

#[test]
fn argmax_named_edges() {
    let m = LIMIT - 1;
    let rows = vec![
        vec![m, -m, m, 0, -m, 3, m, 1, 2, 0], // tied maxima at the top of the range
        vec![-m; 10],                         // all equal
        vec![0; 10],
        vec![-m, -m + 1, -m, -m, -m, -m, -m, -m, -m, -m],
        vec![-1, -1, -1, -1, -1, -1, -1, -1, -1, 0], // last, one unit ahead
    ];
    assert_eq!(run_argmax(&Ppa::default(), &rows, 13), vec![0, 0, 0, 1, 9]);
    assert_eq!(run_argmax(&Fss, &rows, 13), vec![0, 0, 0, 1, 9]);
}

#[test]
fn linear_dense_and_conv_are_exact() {
    check_linear(Bilinear::Dense { rows: 7, cols: 13 }, 3, 1);
    let g = Conv2dGeom {
        in_ch: 2,
        in_h: 9,
        in_w: 8,
        out_ch: 3,
        kernel: [3, 3],
        stride: [2, 1],
        pads: [1, 0, 1, 2],
        dilation: [1, 1],
        groups: 1,
    };
    check_linear(Bilinear::Conv(g), 2, 2);
    check_linear(Bilinear::Diagonal { len: 11 }, 2, 3);
}

#[test]
fn beaver_product_is_exact() {
    let mut prg = Prg::new(&Seed::from_u64(5), 2);
    let (x, y) = (prg.elems(40), prg.elems(40));
    let (x0, x1) = split(&x, 1);
    let (y0, y1) = split(&y, 2);
    let run = run_pair(
        6,
        |d| mul::deal(d, 40),
        |ctx, p| {
            let m = mul::take(p, 40);
            mul::eval(ctx, &x0, &y0, &m).unwrap()
        },
        |ctx, p| {
            let m = mul::take(p, 40);
            mul::eval(ctx, &x1, &y1, &m).unwrap()
        },
    );
    assert_trace(&run, &mul::trace(40));
    assert_eq!(run.offline_bytes as u64, mul::offline_bytes(40));
    let want: Vec<Elem> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
    assert_eq!(cryptmed_ring::add(&run.provider, &run.client), want);
}
