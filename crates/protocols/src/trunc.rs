//! Stand-alone truncation by `k` bits (where no comparison follows to share
//! the opening): open `c = y + r` (one exchange, 8 bytes each way per
//! element), then the linear form of [`mask`](crate::mask). Exact to one unit
//! in the last place for `|y| < 2^62`. Dealer: `16 n` bytes (`r63` and `q`).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

use crate::cost::{Cost, Trace};
use crate::mask::{self, Mask, TruncParts};
use crate::{Ctx, ProtocolError};

/// This party's material for `n` truncations.
pub struct TruncMaterial {
    mask: Mask,
    parts: TruncParts,
}

/// Dealer: material for `n` truncations by `k` bits.
pub fn deal(d: &mut Dealer, n: usize, k: u32) {
    let r = mask::deal(d, n);
    mask::deal_trunc(d, &r, k);
}

/// Party: mirror of [`deal`].
pub fn take(p: &mut dyn PrepSource, n: usize) -> TruncMaterial {
    TruncMaterial {
        mask: mask::take(p, n),
        parts: mask::take_trunc(p, n),
    }
}

/// Shares of `y >> k`.
pub fn eval(
    ctx: &mut Ctx<'_>,
    y: &[Elem],
    k: u32,
    mat: &TruncMaterial,
) -> Result<Vec<Elem>, ProtocolError> {
    let c = mask::open(ctx, y, &mat.mask)?;
    Ok(mask::truncated_share(ctx.lead(), &c, k, &mat.parts))
}

/// The communication of [`eval`] on `n` elements.
pub fn trace(n: usize) -> Trace {
    mask::open_trace(n)
}

/// Closed-form cost of [`eval`]: `16 n` bytes, 1 round.
pub const fn cost(n: usize) -> Cost {
    mask::open_cost(n)
}

/// Dealer bytes of [`deal`]: `16 n`.
pub const fn offline_bytes(n: usize) -> u64 {
    mask::trunc_offline_bytes(n)
}
