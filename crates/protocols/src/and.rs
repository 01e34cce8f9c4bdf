//! AND gates on bit-sliced XOR shares with dealer bit triples.
//!
//! For `x AND y` the dealer gives XOR-shared `a`, `b` and `ab`. The parties
//! open `d = x ^ a`, `e = y ^ b` (one bit each per lane, both ways) and take
//! `z = d&e ^ d&b ^ e&a ^ ab` (the public `d&e` by the provider only).
//!
//! A *shared-operand* gate computes `x AND y1` and `x AND y2` from one triple
//! `(a, b1, b2, a b1, a b2)`, opening `d` once: 3 opened bits instead of 4.
//! The comparison's prefix tree uses it, since both of a node's products
//! share the operand `P_hi`.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::bits::BitVec;

/// This party's shares of one triple with one shared operand and `k` (1 or 2) others.
#[derive(Clone)]
pub struct Triple {
    a: BitVec,
    b: Vec<BitVec>,
    ab: Vec<BitVec>,
}

/// Dealer: a triple with `k` second operands over `n` lanes.
pub fn deal(d: &mut Dealer, n: usize, k: usize) {
    let a = d.random_bits(n);
    let bs: Vec<BitVec> = (0..k).map(|_| d.random_bits(n)).collect();
    for b in &bs {
        d.share_bits(&a.and(b));
    }
}

/// Party: mirror of [`deal`].
pub fn take(p: &mut dyn PrepSource, n: usize, k: usize) -> Triple {
    let a = p.random_bits(n);
    let b: Vec<BitVec> = (0..k).map(|_| p.random_bits(n)).collect();
    let ab = (0..k).map(|_| p.share_bits(n)).collect();
    Triple { a, b, ab }
}

/// The vectors this party opens for `x AND ys[i]`: `x ^ a`, then each `ys[i] ^ b_i`.
pub fn masked(x: &BitVec, ys: &[&BitVec], t: &Triple) -> Vec<BitVec> {
    let mut v = vec![x.xor(&t.a)];
    v.extend(ys.iter().zip(&t.b).map(|(y, b)| y.xor(b)));
    v
}

/// This party's shares of `x AND ys[i]` from the opened `d` and `es`.
pub fn finish(lead: bool, d: &BitVec, es: &[BitVec], t: &Triple) -> Vec<BitVec> {
    es.iter()
        .zip(t.b.iter().zip(&t.ab))
        .map(|(e, (b, ab))| {
            let mut z = d.and(b);
            z.xor_assign(&e.and(&t.a));
            z.xor_assign(ab);
            if lead {
                z.xor_assign(&d.and(e));
            }
            z
        })
        .collect()
}
