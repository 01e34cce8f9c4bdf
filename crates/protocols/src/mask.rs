//! Masked openings, the step every non-linear protocol starts with.
//!
//! The dealer draws a uniform `r` (both shares seeded: free). The parties
//! open `c = x + r` in one exchange (8 bytes each way per element). `c` is
//! public and uniform; everything after it is computed from `c` and
//! dealer-known functions of `r`.
//!
//! **Truncation from the same opening** (DESIGN.md section 3). For `|x| <
//! 2^62` and `c_t = c + 2^62`: with `r63` the top bit of `r` and `q = (r mod
//! 2^63) >> k`,
//! `x >> k = (c_t' >> k) + 2^(63-k) (c_t63 XOR r63) - q - 2^(62-k) - borrow`
//! where `c_t'` is the low 63 bits of `c_t` and `borrow` is 0 or 1. `c_t63 XOR
//! r63 = c_t63 + (1 - 2 c_t63) r63` is linear in a share of `r63`, so the
//! truncated value is `K + alpha * r63 - q` with public `K`, `alpha`: exact to
//! one unit in the last place (dropping the borrow rounds up by at most one),
//! never catastrophically wrong.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_share::open::open_elems;

use crate::cost::{Cost, Trace};
use crate::{Ctx, ProtocolError};

/// Offset that makes `|x| < 2^62` non-negative.
pub const OFFSET: Elem = 1 << 62;

/// This party's share of the masks `r` for `n` elements.
#[derive(Clone)]
pub struct Mask {
    /// Share of `r`.
    pub r: Vec<Elem>,
}

/// Dealer: draws `n` masks; returns their values.
pub fn deal(d: &mut Dealer, n: usize) -> Vec<Elem> {
    d.random_arith(n)
}

/// Party: its share of `n` masks.
pub fn take(p: &mut dyn PrepSource, n: usize) -> Mask {
    Mask {
        r: p.random_arith(n),
    }
}

/// Opens `c = x + r` (one exchange of `8n` bytes).
pub fn open(ctx: &mut Ctx<'_>, x: &[Elem], mask: &Mask) -> Result<Vec<Elem>, ProtocolError> {
    let masked = cryptmed_ring::add(x, &mask.r);
    Ok(open_elems(ctx.ch, &masked)?)
}

/// The communication of [`open`] on `n` elements.
pub fn open_trace(n: usize) -> Trace {
    Trace::exchange(8 * n as u64)
}

/// Closed-form cost of [`open`]: `16 n` bytes, 1 round.
pub const fn open_cost(n: usize) -> Cost {
    Cost::exchange(8 * n as u64)
}

/// This party's shares of the truncation parts of the masks.
#[derive(Clone)]
pub struct TruncParts {
    /// Share of the top bit of `r` (as 0 or 1 in the ring).
    pub r63: Vec<Elem>,
    /// Share of `(r mod 2^63) >> k`.
    pub q: Vec<Elem>,
}

/// The dealer's values of the truncation parts (`r63`, `q`) of masks `r` for shift `k`.
pub fn trunc_values(r: &[Elem], k: u32) -> (Vec<Elem>, Vec<Elem>) {
    let r63 = r.iter().map(|x| x >> 63).collect();
    let q = r.iter().map(|x| (x & (u64::MAX >> 1)) >> k).collect();
    (r63, q)
}

/// Dealer: shares the truncation parts of `r` for shift `k`; returns their values.
pub fn deal_trunc(d: &mut Dealer, r: &[Elem], k: u32) -> (Vec<Elem>, Vec<Elem>) {
    let (r63, q) = trunc_values(r, k);
    d.share_arith(&r63);
    d.share_arith(&q);
    (r63, q)
}

/// Dealer bytes of [`deal_trunc`] on `n` masks: `16 n` (the mask itself is seeded).
pub const fn trunc_offline_bytes(n: usize) -> u64 {
    16 * n as u64
}

/// Party: its shares of the truncation parts for `n` elements.
pub fn take_trunc(p: &mut dyn PrepSource, n: usize) -> TruncParts {
    TruncParts {
        r63: p.share_arith(n),
        q: p.share_arith(n),
    }
}

/// Public coefficients `(K, alpha)` with `x >> k = K + alpha * r63 - q - borrow` (borrow 0 or 1,
/// dropped: the result is at most one unit high), from `c = x + r`.
#[inline]
pub fn trunc_form(c: Elem, k: u32) -> (Elem, Elem) {
    let ct = c.wrapping_add(OFFSET);
    let top = ct >> 63;
    let low = ct & (u64::MAX >> 1);
    let unit = 1u64 << (63 - k);
    let konst = (low >> k)
        .wrapping_add(unit.wrapping_mul(top))
        .wrapping_sub(1u64 << (62 - k));
    let alpha = unit.wrapping_mul(1u64.wrapping_sub(2 * top));
    (konst, alpha)
}

/// This party's share of `x >> k` given the opened `c` and its truncation parts.
pub fn truncated_share(lead: bool, c: &[Elem], k: u32, parts: &TruncParts) -> Vec<Elem> {
    c.iter()
        .zip(parts.r63.iter().zip(&parts.q))
        .map(|(c, (r63, q))| {
            let (konst, alpha) = trunc_form(*c, k);
            let own = alpha.wrapping_mul(*r63).wrapping_sub(*q);
            if lead { own.wrapping_add(konst) } else { own }
        })
        .collect()
}
