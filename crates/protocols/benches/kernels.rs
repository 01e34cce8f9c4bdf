//! Micro-benchmarks of the hot kernels, reported as elements per second:
//! ring matrix product and convolution, PRG expansion, bit-slicing, a
//! bit-sliced AND layer and the local part of the comparison, encoding and
//! decoding of the ring slices that make up the data frames, and a whole
//! ReLU layer over the in-memory channel.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cryptmed_protocols::testing::run_pair;
use cryptmed_protocols::{Ppa, relu};
use cryptmed_ring::bits::bit_planes;
use cryptmed_ring::kernels::{Conv2dGeom, matvec};
use cryptmed_ring::{bytes_to_elems, elems_to_bytes};
use cryptmed_share::{Prg, Seed};

fn kernels(c: &mut Criterion) {
    let mut prg = Prg::new(&Seed::from_u64(1), 0);

    let mut g = c.benchmark_group("ring");
    let (rows, cols) = (128, 784);
    let w = prg.elems(rows * cols);
    let x = prg.elems(cols);
    g.throughput(Throughput::Elements((rows * cols) as u64));
    g.bench_function("matvec 128x784 (MACs)", |b| {
        b.iter(|| matvec(&w, rows, cols, &x))
    });
    let geom = Conv2dGeom {
        in_ch: 64,
        in_h: 32,
        in_w: 32,
        out_ch: 64,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [1; 4],
        dilation: [1, 1],
        groups: 1,
    };
    let cw = prg.elems(geom.weight_len());
    let cx = prg.elems(geom.in_len());
    g.throughput(Throughput::Elements((geom.weight_len() * 32 * 32) as u64));
    g.sample_size(10);
    g.bench_function("conv 64x64x3x3 on 32x32 (MACs)", |b| {
        b.iter(|| geom.apply(&cw, &cx))
    });
    g.finish();

    let mut g = c.benchmark_group("prg");
    g.throughput(Throughput::Elements(1 << 20));
    g.bench_function("chacha12 expand 2^20 ring elements", |b| {
        b.iter(|| prg.elems(1 << 20))
    });
    g.finish();

    let mut g = c.benchmark_group("bits");
    let vals = prg.elems(1 << 16);
    g.throughput(Throughput::Elements(1 << 16));
    g.bench_function("bit planes of 2^16 values", |b| {
        b.iter(|| bit_planes(&vals, 64))
    });
    let (p, q) = (prg.bits(1 << 20), prg.bits(1 << 20));
    g.throughput(Throughput::Elements(1 << 20));
    g.bench_function("AND of 2^20 bit-sliced lanes", |b| b.iter(|| p.and(&q)));
    g.finish();

    let mut g = c.benchmark_group("wire");
    let n = 1usize << 16;
    let xs = prg.elems(n);
    let mut buf = Vec::with_capacity(8 * n);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(
        "encode 2^16 ring elements (little-endian frame body)",
        |b| {
            b.iter(|| {
                buf.clear();
                elems_to_bytes(&xs, &mut buf);
            })
        },
    );
    elems_to_bytes(&xs, &mut buf);
    g.bench_function("decode 2^16 ring elements", |b| {
        b.iter(|| bytes_to_elems(&buf))
    });
    g.finish();

    let mut g = c.benchmark_group("relu layer (both parties, memory channel)");
    g.sample_size(10);
    for n in [1usize << 10, 1 << 16] {
        let ys: Vec<u64> = prg
            .elems(n)
            .iter()
            .map(|v| ((*v as i64) >> 20) as u64)
            .collect();
        let cmp = Ppa::default();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                run_pair(
                    3,
                    |d| relu::deal(&cmp, d, n, 16),
                    |ctx, p| {
                        let m = relu::take(&cmp, p, n, 16);
                        relu::eval(&cmp, ctx, &ys, 16, &m).unwrap()
                    },
                    |ctx, p| {
                        let m = relu::take(&cmp, p, n, 16);
                        relu::eval(&cmp, ctx, &vec![0; n], 16, &m).unwrap()
                    },
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
