//! Multiplying a shared bit by a value the dealer can describe: one opened
//! bit per element.
//!
//! After a masked opening, many values are *linear forms* in dealer-known
//! quantities: `v = alpha_0 + sum_m alpha_m D_m` with public coefficients
//! `alpha` (functions of the opened `c`) and secrets `D_m` (the mask `r`, its
//! truncation parts, powers of `r`, ...). For an XOR-shared bit `b` the
//! dealer adds a random bit `delta` (XOR- and additively shared) and the
//! products `delta * D_m`. The parties open `e = b ^ delta` (one bit each
//! way, one round). Then `b = e + (1 - 2e) delta`, and
//! `b v = sum_m alpha_m (e D_m + (1 - 2e) delta D_m)` (with `D_0 = 1`) is
//! linear in the parties' shares: no multiplication triple, no second round.
//!
//! Online: `ceil(n/8)` bytes each way, 1 round. Dealer: `1 + M` ring
//! elements per element (corrections to the client).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::bits::{BitVec, bytes_for};
use cryptmed_share::open::open_bits;

use crate::cost::{Cost, Trace, bit_bytes};
use crate::{Ctx, ProtocolError};

/// This party's material for selecting `n` values with `M` dealer terms.
#[derive(Clone)]
pub struct SelectMaterial {
    delta_bits: BitVec,
    delta: Vec<Elem>,
    delta_terms: Vec<Vec<Elem>>,
}

impl SelectMaterial {
    /// Number of dealer terms the forms may use.
    pub fn terms(&self) -> usize {
        self.delta_terms.len()
    }
}

/// Dealer: material for bits times forms over the dealer values `terms[m]` (each of `n` values).
pub fn deal(d: &mut Dealer, n: usize, terms: &[&[Elem]]) {
    let delta = d.random_bits(n);
    let dv = delta.to_u64s();
    d.share_arith(&dv);
    for t in terms {
        let prod: Vec<Elem> = t.iter().zip(&dv).map(|(x, b)| x.wrapping_mul(*b)).collect();
        d.share_arith(&prod);
    }
}

/// Party: mirror of [`deal`] with `terms` dealer terms.
pub fn take(p: &mut dyn PrepSource, n: usize, terms: usize) -> SelectMaterial {
    let delta_bits = p.random_bits(n);
    let delta = p.share_arith(n);
    let delta_terms = (0..terms).map(|_| p.share_arith(n)).collect();
    SelectMaterial {
        delta_bits,
        delta,
        delta_terms,
    }
}

/// A linear form `alpha_0 + sum_m alpha_m D_m`, with this party's shares of each `D_m`.
pub struct Form<'a> {
    /// Public constant term per element.
    pub constant: Vec<Elem>,
    /// Public coefficient per element and this party's share of `D_m`, per term.
    pub terms: Vec<(Vec<Elem>, &'a [Elem])>,
}

/// The vector this party opens for bit `b`: `b ^ delta`.
pub fn masked(b: &BitVec, mat: &SelectMaterial) -> BitVec {
    b.xor(&mat.delta_bits)
}

/// This party's share of `b * v` from the opened `e = b ^ delta`.
pub fn finish(lead: bool, e: &BitVec, form: &Form<'_>, mat: &SelectMaterial) -> Vec<Elem> {
    let n = e.len();
    (0..n)
        .map(|i| {
            let ei = e.get(i);
            let beta = 1u64.wrapping_sub(2 * ei);
            let mut acc = form.constant[i].wrapping_mul(beta.wrapping_mul(mat.delta[i]));
            if lead {
                acc = acc.wrapping_add(form.constant[i].wrapping_mul(ei));
            }
            for ((alpha, share), dd) in form.terms.iter().zip(&mat.delta_terms) {
                let term = ei
                    .wrapping_mul(share[i])
                    .wrapping_add(beta.wrapping_mul(dd[i]));
                acc = acc.wrapping_add(alpha[i].wrapping_mul(term));
            }
            acc
        })
        .collect()
}

/// Shares of `b * v` for one bit vector: open `b ^ delta` (one round), then [`finish`].
pub fn select(
    ctx: &mut Ctx<'_>,
    b: &BitVec,
    form: &Form<'_>,
    mat: &SelectMaterial,
) -> Result<Vec<Elem>, ProtocolError> {
    let e = open_bits(ctx.ch, &[&masked(b, mat)])?;
    Ok(finish(ctx.lead(), &e[0], form, mat))
}

/// The communication of [`select`] on `n` elements.
pub fn trace(n: usize) -> Trace {
    Trace::exchange(bytes_for(n) as u64)
}

/// Closed-form cost of [`select`]: `2 ceil(n/8)` bytes, 1 round.
pub const fn cost(n: usize) -> Cost {
    Cost::exchange(bit_bytes(n))
}

/// Dealer bytes of [`deal`] with `terms` terms: `8 n (1 + terms)` (the
/// arithmetic share of `delta` and each product; the bits are seeded).
pub const fn offline_bytes(n: usize, terms: usize) -> u64 {
    8 * (n * (1 + terms)) as u64
}

/// This party's share of the form itself (no bit): the constant (provider)
/// plus the coefficients times its shares.
pub fn local(lead: bool, form: &Form<'_>) -> Vec<Elem> {
    (0..form.constant.len())
        .map(|i| local_at(lead, form, i))
        .collect()
}

/// [`local`] at element `i`.
pub fn local_at(lead: bool, form: &Form<'_>, i: usize) -> Elem {
    let own = form.terms.iter().fold(0 as Elem, |a, (alpha, share)| {
        a.wrapping_add(alpha[i].wrapping_mul(share[i]))
    });
    if lead {
        own.wrapping_add(form.constant[i])
    } else {
        own
    }
}
