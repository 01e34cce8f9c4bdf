//! DCF key generation and evaluation throughput (keys/s, evaluations/s) on
//! 63-bit inputs, as the protocols use them: GF(2) bits (comparisons) and
//! 3-element ring payloads (ReLU with its fused truncation). Release only:
//! the dev profile's AES is slow. `cargo bench -p cryptmed-fss`.
//!
//! 4,096 keys fit in the cache; "eval from memory" evaluates 16,384
//! three-element keys (42 MB, beyond the cache), as keys just received from
//! the dealer are.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cryptmed_fss::{Dcf, Group, Ring, Xor};

const KEYS: usize = 4096;
const BITS: u32 = 63;

/// Deterministic pseudo-random words (a 64-bit LCG; only throughput matters).
fn words(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x
        })
        .collect()
}

fn roots(n: usize, seed: u64) -> Vec<u128> {
    words(2 * n, seed)
        .chunks_exact(2)
        .map(|w| u128::from(w[0]) | u128::from(w[1]) << 64)
        .collect()
}

/// Keygen (unless `eval_only`) and evaluation of `keys` keys.
fn bench_group<G: Group>(c: &mut Criterion, width: usize, keys: usize, eval_only: bool) {
    let dcf = Dcf::<G>::new(BITS, width);
    let (r0, r1) = (roots(keys, 1), roots(keys, 2));
    let alphas: Vec<u64> = words(keys, 3).iter().map(|a| a >> 1).collect();
    let points: Vec<u64> = words(keys, 4).iter().map(|a| a >> 1).collect();
    let betas = if G::BITS == 1 {
        vec![1; keys]
    } else {
        words(width * keys, 5)
    };
    let id = format!("{} width {width}", G::NAME);
    let mut g = c.benchmark_group("dcf");
    g.throughput(Throughput::Elements(keys as u64));
    if !eval_only {
        g.bench_function(BenchmarkId::new("keygen", &id), |b| {
            b.iter(|| dcf.keygen([&r0, &r1], &alphas, &betas))
        });
    }
    let cws = dcf.keygen([&r0, &r1], &alphas, &betas);
    let name = if eval_only {
        "eval from memory"
    } else {
        "eval"
    };
    g.bench_function(BenchmarkId::new(name, &id), |b| {
        b.iter(|| dcf.eval(0, &r0, &cws, &points, 1))
    });
    g.finish();
}

fn dcf(c: &mut Criterion) {
    bench_group::<Xor>(c, 1, KEYS, false);
    bench_group::<Ring>(c, 3, KEYS, false);
    bench_group::<Ring>(c, 3, 4 * KEYS, true);
}

criterion_group!(benches, dcf);
criterion_main!(benches);
