//! Element-wise product of two shared vectors with Beaver triples: open
//! `x - a` and `y - b` together (one exchange of 16 bytes each way per
//! element), then `xy = ab + (x-a) b + (y-b) a + (x-a)(y-b)`. The result is
//! at the sum of the operands' scales; the engine truncates.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_share::open::open_elems;

use crate::cost::{Cost, Trace};
use crate::{Ctx, ProtocolError};

/// This party's triples for `n` products.
pub struct MulMaterial {
    a: Vec<Elem>,
    b: Vec<Elem>,
    ab: Vec<Elem>,
}

/// Dealer: `n` triples.
pub fn deal(d: &mut Dealer, n: usize) {
    let a = d.random_arith(n);
    let b = d.random_arith(n);
    let ab: Vec<Elem> = a.iter().zip(&b).map(|(x, y)| x.wrapping_mul(*y)).collect();
    d.share_arith(&ab);
}

/// Party: mirror of [`deal`].
pub fn take(p: &mut dyn PrepSource, n: usize) -> MulMaterial {
    MulMaterial {
        a: p.random_arith(n),
        b: p.random_arith(n),
        ab: p.share_arith(n),
    }
}

/// Shares of `x * y` element-wise.
pub fn eval(
    ctx: &mut Ctx<'_>,
    x: &[Elem],
    y: &[Elem],
    mat: &MulMaterial,
) -> Result<Vec<Elem>, ProtocolError> {
    let n = x.len();
    let mut masked = cryptmed_ring::sub(x, &mat.a);
    masked.extend(cryptmed_ring::sub(y, &mat.b));
    let opened = open_elems(ctx.ch, &masked)?;
    let (e, f) = opened.split_at(n);
    let lead = ctx.lead();
    Ok((0..n)
        .map(|i| {
            let mut z = mat.ab[i]
                .wrapping_add(e[i].wrapping_mul(mat.b[i]))
                .wrapping_add(f[i].wrapping_mul(mat.a[i]));
            if lead {
                z = z.wrapping_add(e[i].wrapping_mul(f[i]));
            }
            z
        })
        .collect())
}

/// The communication of [`eval`] on `n` elements.
pub fn trace(n: usize) -> Trace {
    Trace::exchange(16 * n as u64)
}

/// Closed-form cost of [`eval`]: `32 n` bytes, 1 round.
pub const fn cost(n: usize) -> Cost {
    Cost::exchange(16 * n as u64)
}

/// Dealer bytes of [`deal`]: `8 n` (the share of `ab`; `a` and `b` are seeded).
pub const fn offline_bytes(n: usize) -> u64 {
    8 * n as u64
}
