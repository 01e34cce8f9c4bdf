//! Throughput of the clear-text kernels in multiply-adds per second
//! (criterion reports `Melem/s` = M MAC/s): ResNet-50 layers, a
//! MobileNetV2 depthwise layer and a dense head on the ring (`u64`) and on
//! `f64`, each compiled variant (baseline, AVX2, AVX-512) on one layer, a
//! whole ResNet-50's convolutions, and as the machine's reference
//! an `f64` matrix product of each layer's size, by these kernels and by a
//! plain triple loop.
//!
//! `cargo bench -p cryptmed-ring --bench kernels`

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use cryptmed_ring::kernels::{Conv2dGeom, Isa, Scalar, matvec, matvec_batch_on};

/// A convolution with square kernel, stride and symmetric padding.
fn conv(
    in_ch: usize,
    hw: usize,
    out_ch: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> Conv2dGeom {
    Conv2dGeom {
        in_ch,
        in_h: hw,
        in_w: hw,
        out_ch,
        kernel: [k, k],
        stride: [stride, stride],
        pads: [k / 2; 4],
        dilation: [1, 1],
        groups,
    }
}

/// Multiply-adds of one record.
fn macs(g: &Conv2dGeom) -> usize {
    g.weight_len() * g.out_h() * g.out_w()
}

/// Reproducible full-range values (splitmix64).
fn values(seed: u64, n: usize) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

/// Values in [-1, 1).
fn reals(seed: u64, n: usize) -> Vec<f64> {
    values(seed, n)
        .iter()
        .map(|v| (*v as i64) as f64 / 2f64.powi(63))
        .collect()
}

/// The layers benchmarked one by one.
fn layers() -> Vec<(&'static str, Conv2dGeom)> {
    vec![
        ("resnet50 stem 7x7/2 3->64 @224", conv(3, 224, 64, 7, 2, 1)),
        ("resnet50 3x3 64->64 @56", conv(64, 56, 64, 3, 1, 1)),
        ("resnet50 1x1 256->64 @56", conv(256, 56, 64, 1, 1, 1)),
        ("resnet50 1x1 1024->256 @14", conv(1024, 14, 256, 1, 1, 1)),
        ("resnet50 3x3 512->512 @7", conv(512, 7, 512, 3, 1, 1)),
        (
            "mobilenetv2 depthwise 3x3 32ch @112",
            conv(32, 112, 32, 3, 1, 32),
        ),
    ]
}

/// Every convolution of torchvision's ResNet-50 at 224x224 (v1.5: the
/// stride sits on the 3x3 of a stage's first block).
fn resnet50() -> Vec<Conv2dGeom> {
    let mut all = vec![conv(3, 224, 64, 7, 2, 1)];
    let (mut ch, mut hw) = (64, 56);
    for (stage, (width, blocks)) in [(64, 3), (128, 4), (256, 6), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for b in 0..blocks {
            let stride = if b == 0 && stage > 0 { 2 } else { 1 };
            all.push(conv(ch, hw, width, 1, 1, 1));
            all.push(conv(width, hw, width, 3, stride, 1));
            let out_hw = hw / stride;
            all.push(conv(width, out_hw, 4 * width, 1, 1, 1));
            if b == 0 {
                all.push(conv(ch, hw, 4 * width, 1, stride, 1));
            }
            ch = 4 * width;
            hw = out_hw;
        }
    }
    all
}

/// One convolution per layer on `T`.
fn bench_layers<T: Scalar>(g: &mut BenchmarkGroup<'_, WallTime>, make: fn(u64, usize) -> Vec<T>) {
    for (name, geom) in layers() {
        let w = make(1, geom.weight_len());
        let x = make(2, geom.in_len());
        g.throughput(Throughput::Elements(macs(&geom) as u64));
        g.bench_function(name, |b| {
            b.iter(|| geom.apply(black_box(&w), black_box(&x)))
        });
    }
    let (rows, cols) = (1000, 2048);
    let w = make(3, rows * cols);
    let x = make(4, cols);
    g.throughput(Throughput::Elements((rows * cols) as u64));
    g.bench_function("dense 2048->1000", |b| {
        b.iter(|| matvec(black_box(&w), rows, cols, black_box(&x)))
    });
}

/// `C = A B` for `A` of `m x k` and `B` of `k x n`, row-major: the plain
/// triple loop (`i, p, j`, so the inner loop runs along rows of `B` and `C`).
fn triple_loop(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        let ci = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let aip = a[i * k + p];
            for (cv, bv) in ci.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cv += aip * bv;
            }
        }
    }
    c
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("u64 ring (MAC)");
    g.sample_size(10);
    bench_layers(&mut g, values);
    g.finish();

    let mut g = c.benchmark_group("f64 (MAC)");
    g.sample_size(10);
    bench_layers(&mut g, reals);
    g.finish();

    // What vectorization buys: one layer on every instruction set this CPU
    // has (the baseline is x86-64's SSE2, whose 64-bit products are scalar).
    let mut g = c.benchmark_group("by instruction set (MAC)");
    g.sample_size(10);
    let geom = conv(64, 56, 64, 3, 1, 1);
    let (w, x) = (values(1, geom.weight_len()), values(2, geom.in_len()));
    let (wf, xf) = (reals(1, geom.weight_len()), reals(2, geom.in_len()));
    let (rows, cols) = (1000, 2048);
    let (dw, dx) = (values(3, rows * cols), values(4, cols));
    for isa in Isa::available() {
        g.throughput(Throughput::Elements(macs(&geom) as u64));
        g.bench_function(format!("{isa:?} u64 3x3 64->64 @56"), |b| {
            b.iter(|| geom.apply_batch_on(isa, black_box(&w), black_box(&x)))
        });
        g.bench_function(format!("{isa:?} f64 3x3 64->64 @56"), |b| {
            b.iter(|| geom.apply_batch_on(isa, black_box(&wf), black_box(&xf)))
        });
        g.throughput(Throughput::Elements((rows * cols) as u64));
        g.bench_function(format!("{isa:?} u64 dense 2048->1000"), |b| {
            b.iter(|| matvec_batch_on(isa, black_box(&dw), rows, cols, black_box(&dx)))
        });
    }
    g.finish();

    // The machine's reference: an f64 product of each ResNet layer's size
    // (m = out channels, k = taps, n = output pixels), as these kernels run
    // it (a 1x1 convolution over k channels of n pixels is exactly C = A B)
    // and as a plain triple loop.
    let mut g = c.benchmark_group("f64 gemm reference (MAC)");
    g.sample_size(10);
    for (name, geom) in layers().into_iter().filter(|(_, l)| l.groups == 1) {
        let (m, k, n) = (
            geom.out_ch,
            geom.weight_len() / geom.out_ch,
            geom.out_h() * geom.out_w(),
        );
        let gemm = Conv2dGeom {
            in_ch: k,
            in_h: 1,
            in_w: n,
            out_ch: m,
            ..conv(k, 1, m, 1, 1, 1)
        };
        let a = reals(5, m * k);
        let b = reals(6, k * n);
        g.throughput(Throughput::Elements((m * k * n) as u64));
        let size = format!("{m}x{k}x{n} ({})", name.trim_start_matches("resnet50 "));
        g.bench_function(format!("kernels {size}"), |bn| {
            bn.iter(|| gemm.apply(black_box(&a), black_box(&b)))
        });
        g.bench_function(format!("triple loop {size}"), |bn| {
            bn.iter(|| triple_loop(black_box(&a), black_box(&b), m, k, n))
        });
    }
    g.finish();

    // A whole network: the time of every ResNet-50 convolution of one record
    // (one party's share of the linear layers' work).
    let mut g = c.benchmark_group("resnet50 all convolutions (MAC)");
    g.sample_size(10);
    let net = resnet50();
    let inputs: Vec<(Vec<u64>, Vec<u64>)> = net
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                values(i as u64, l.weight_len()),
                values(!(i as u64), l.in_len()),
            )
        })
        .collect();
    g.throughput(Throughput::Elements(
        net.iter().map(macs).sum::<usize>() as u64
    ));
    g.bench_function("u64, one record", |b| {
        b.iter(|| {
            for (l, (w, x)) in net.iter().zip(&inputs) {
                black_box(l.apply(w, x));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
