//! A shared bit times a shared value (both secret, unlike
//! [`select`](crate::select), whose values are dealer-known forms): one round.
//!
//! The dealer gives a random bit `d` (XOR- and additively shared), a
//! random `a` and `d a` (additively shared). The parties open `e = b ^ d`
//! (one bit) and `f = x - a` (one element). With `b = e + (1 - 2e) d` and `x
//! = f + a`: `b x = e f + e a + (1 - 2e)(d f + d a)`, linear in the shares.
//!
//! Online: `8 n + ceil(n/8)` bytes each way, 1 round. Dealer: `16 n` (the
//! shares of `d` and of `d a`; the bits and `a` are seeded).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_ring::{Elem, bytes_to_elems, elems_to_bytes};

use crate::cost::{Cost, Trace, bit_bytes};
use crate::{Ctx, ProtocolError};

/// This party's material for `n` products.
pub struct BitMulMaterial {
    d_bits: BitVec,
    d: Vec<Elem>,
    a: Vec<Elem>,
    da: Vec<Elem>,
}

/// Dealer: material for `n` products.
pub fn deal(d: &mut Dealer, n: usize) {
    let bits = d.random_bits(n).to_u64s();
    d.share_arith(&bits);
    let a = d.random_arith(n);
    let da: Vec<Elem> = bits
        .iter()
        .zip(&a)
        .map(|(b, a)| b.wrapping_mul(*a))
        .collect();
    d.share_arith(&da);
}

/// Party: mirror of [`deal`].
pub fn take(p: &mut dyn PrepSource, n: usize) -> BitMulMaterial {
    BitMulMaterial {
        d_bits: p.random_bits(n),
        d: p.share_arith(n),
        a: p.random_arith(n),
        da: p.share_arith(n),
    }
}

/// Shares of `b_i x_i`, `b` XOR-shared, `x` additively shared.
pub fn eval(
    ctx: &mut Ctx<'_>,
    b: &BitVec,
    x: &[Elem],
    mat: &BitMulMaterial,
) -> Result<Vec<Elem>, ProtocolError> {
    let n = x.len();
    let mut out = Vec::with_capacity(bytes_for(n) + 8 * n);
    b.xor(&mat.d_bits).write_bytes(&mut out);
    elems_to_bytes(&cryptmed_ring::sub(x, &mat.a), &mut out);
    let mut input = vec![0u8; out.len()];
    ctx.ch.exchange(&out, &mut input)?;
    let split = bytes_for(n);
    let theirs_e = BitVec::from_bytes(&input[..split], n);
    let e = b.xor(&mat.d_bits).xor(&theirs_e);
    let f = cryptmed_ring::add(
        &cryptmed_ring::sub(x, &mat.a),
        &bytes_to_elems(&input[split..]),
    );
    let lead = ctx.lead();
    Ok((0..n)
        .map(|i| {
            let (ei, fi) = (e.get(i), f[i]);
            let flip = 1u64.wrapping_sub(2 * ei);
            let mut z = ei
                .wrapping_mul(mat.a[i])
                .wrapping_add(flip.wrapping_mul(fi.wrapping_mul(mat.d[i]).wrapping_add(mat.da[i])));
            if lead {
                z = z.wrapping_add(ei.wrapping_mul(fi));
            }
            z
        })
        .collect())
}

/// The communication of [`eval`] on `n` elements.
pub fn trace(n: usize) -> Trace {
    Trace::exchange((bytes_for(n) + 8 * n) as u64)
}

/// Closed-form cost of [`eval`]: `2 (8 n + ceil(n/8))` bytes, 1 round.
pub const fn cost(n: usize) -> Cost {
    Cost::exchange(8 * n as u64 + bit_bytes(n))
}

/// Dealer bytes of [`deal`]: `16 n`.
pub const fn offline_bytes(n: usize) -> u64 {
    16 * n as u64
}
