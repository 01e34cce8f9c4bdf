//! Symmetric smooth evaluation: the sign of `x`, then a half table on `|x|`.
//!
//! For functions with a symmetry ([`Symmetric`], from `cryptmed-approx`:
//! sigmoid, tanh, erf, softplus, SiLU, GELU) the half table needs about half
//! the breakpoints, and the comparisons are what online bytes pay for. The
//! price is a second opening: `|x|` must be masked afresh before it can be
//! compared.
//!
//! Protocol, for `y` at scale `f + k` (the truncation fused as in
//! [`smooth`](crate::smooth)):
//! 1. open `c = y + r` (1 round);
//! 2. the selection of `b = [y < 0]` ([`Selection::below`]; with
//!    [`Ppa`](crate::Ppa) 4 rounds of comparison and one opened bit, with
//!    [`Fss`](crate::Fss) nothing online): `b x` (so `|x| = x - 2 b x`), `b`
//!    itself and, for the odd and complement forms, `b` times the later
//!    truncation's linear form, are linear in dealer values;
//! 3. the direct protocol on `|x|` with the half table (7 rounds with `Ppa`,
//!    2 with `Fss`);
//! 4. locally: `g - 2 b g` (odd), `g + b C - 2 b g` (complement), `g + b x`
//!    (shift), where `b g` uses the selection of step 2 and the truncation
//!    opening of step 3: no further round.
//!
//! **Cost** ([`cost`], [`offline_bytes`]): with `Ppa` 13 rounds; online `16 n
//! + 88 B + 2 B` (steps 1-2, `B = ceil(n/8)`) plus the direct protocol's on
//! the half table; dealer `16 n` when `k > 0` (the two `Q`), the comparison's
//! `262 B`, `8 n (1 + t)` for the sign's select over `t` terms (1 or 2 for
//! the input, plus 2 for the truncation's parts in the odd and complement
//! forms), plus the half table's. Against the direct protocol this trades
//! about `11 (m - m_half) - 34` bytes per element for 6 more rounds (see the
//! crate's README figures): a win on bandwidth-bound links with large
//! batches, a loss where round trips dominate. With `Fss` it takes 3
//! rounds and `48 n` bytes online, more than the direct protocol's 2 rounds
//! and `32 n` bytes: there it only saves dealer key bytes.
//!
//! The result equals the twin ([`Symmetric::eval_shifted`]) to one unit
//! either way (the truncation's round-up, seen through the sign).

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;

pub use cryptmed_approx::{Symmetric, Symmetry};

use crate::compare::{self, Comparison, Selection};
use crate::cost::{Cost, Trace};
use crate::mask::{self, Mask};
use crate::select::{self, Form};
use crate::smooth::{self, Opened, SmoothMaterial};
use crate::{Ctx, ProtocolError};

/// This party's material for `n` evaluations.
pub struct SymmetricMaterial<C: Comparison> {
    k: u32,
    mask: Mask,
    /// The input's dealer part: `[r]` (`k = 0`) or `[Q+, Q-]`.
    x_terms: Vec<Vec<Elem>>,
    inner: SmoothMaterial<C>,
    sign: C::SelectMaterial,
    /// Terms the sign's forms use (the input's, then the truncation's two).
    width: usize,
}

/// Whether the sign multiplies the half table's result (odd and complement forms).
fn signs_result(s: &Symmetric) -> bool {
    s.symmetry != Symmetry::Shift
}

fn x_term_count(k: u32) -> usize {
    if k == 0 { 1 } else { 2 }
}

/// Terms of the sign's forms: the input's, plus the half table's truncation
/// parts (`r63`, `q`) when the sign multiplies the result.
fn sign_terms(s: &Symmetric, k: u32) -> usize {
    let extra = if signs_result(s) && !s.half.scales().is_empty() {
        2
    } else {
        0
    };
    x_term_count(k) + extra
}

/// The sign's selection: `[y < 0]` times forms over [`sign_terms`] terms.
fn selection(s: &Symmetric, k: u32) -> Selection {
    Selection::below(1, sign_terms(s, k))
}

/// Dealer: material for `n` evaluations on inputs `k` bits above the table's input scale.
pub fn deal<C: Comparison>(cmp: &C, d: &mut Dealer, n: usize, s: &Symmetric, k: u32) {
    let r = mask::deal(d, n);
    let x_terms: Vec<Vec<Elem>> = if k == 0 {
        vec![r.clone()]
    } else {
        let (r63, q) = mask::trunc_values(&r, k);
        let unit = 1u64 << (63 - k);
        let plus: Vec<Elem> = q
            .iter()
            .zip(&r63)
            .map(|(q, b)| q.wrapping_sub(unit.wrapping_mul(*b)))
            .collect();
        let minus: Vec<Elem> = q
            .iter()
            .zip(&r63)
            .map(|(q, b)| q.wrapping_add(unit.wrapping_mul(*b)))
            .collect();
        d.share_arith(&plus);
        d.share_arith(&minus);
        vec![plus, minus]
    };
    let parts = smooth::deal_parts(cmp, d, n, &s.half, 0);
    let mut refs: Vec<&[Elem]> = x_terms.iter().map(Vec::as_slice).collect();
    if signs_result(s)
        && let Some((r63, q)) = &parts
    {
        refs.extend([r63.as_slice(), q.as_slice()]);
    }
    cmp.deal_select(d, &r, &selection(s, k), &refs);
}

/// Party: mirror of [`deal`].
pub fn take<C: Comparison>(
    cmp: &C,
    p: &mut dyn PrepSource,
    n: usize,
    s: &Symmetric,
    k: u32,
) -> SymmetricMaterial<C> {
    let mask = mask::take(p, n);
    let x_terms = if k == 0 {
        vec![mask.r.clone()]
    } else {
        vec![p.share_arith(n), p.share_arith(n)]
    };
    let inner = smooth::take(cmp, p, n, &s.half, 0);
    let sign = cmp.take_select(p, n, &selection(s, k));
    SymmetricMaterial {
        k,
        mask,
        x_terms,
        inner,
        sign,
        width: sign_terms(s, k),
    }
}

/// Shares of `f(y)` at the half table's output scale.
pub fn eval<C: Comparison>(
    cmp: &C,
    ctx: &mut Ctx<'_>,
    y: &[Elem],
    s: &Symmetric,
    mat: &SymmetricMaterial<C>,
) -> Result<Vec<Elem>, ProtocolError> {
    let (k, n, lead) = (mat.k, y.len(), ctx.lead());
    let opened = Opened::new(mask::open(ctx, y, &mat.mask)?, k);
    let sel = selection(s, k);
    let b = compare::select(cmp, ctx, &opened.c, &[0], &sel, &mat.sign)?;
    let width = mat.width;
    // x (or x' = y >> k) as a form over the sign's terms: a - B with B = r or the element's Q.
    let x_form = {
        let mut coeffs = vec![vec![0 as Elem; n]; width];
        for (i, top) in opened.top.iter().enumerate() {
            coeffs[usize::from(k > 0 && *top)][i] = Elem::MAX;
        }
        form(opened.centered(k, 0), coeffs, mat)
    };
    let x = select::local(lead, &x_form);
    let bx = b.times(0, &x_form);
    let abs: Vec<Elem> = x
        .iter()
        .zip(&bx)
        .map(|(v, p)| v.wrapping_sub(p.wrapping_mul(2)))
        .collect();
    let (g, c2) = smooth::eval_parts(cmp, ctx, &abs, &s.half, &mat.inner)?;
    let h = &s.half;
    Ok(match s.symmetry {
        Symmetry::Shift => {
            let up = h.out_frac_bits - h.frac_bits;
            g.iter()
                .zip(&bx)
                .map(|(g, p)| g.wrapping_add(p.wrapping_shl(up)))
                .collect()
        }
        _ => {
            let (Some(c2), Some(scale)) = (c2, h.scales().first().copied()) else {
                return Ok(g);
            };
            // b * g with g = the truncation's linear form (the half table is all polynomials).
            let mut coeffs = vec![vec![0 as Elem; n]; width];
            let (konst, alpha): (Vec<Elem>, Vec<Elem>) = c2
                .iter()
                .map(|c| mask::trunc_form(*c, scale - h.out_frac_bits))
                .unzip();
            let xt = x_term_count(k);
            coeffs[xt] = alpha;
            coeffs[xt + 1] = vec![Elem::MAX; n];
            let bg = b.times(0, &form(konst, coeffs, mat));
            let bc = if s.symmetry == Symmetry::Complement {
                let zeros = vec![vec![0 as Elem; n]; width];
                b.times(0, &form(vec![s.total as Elem; n], zeros, mat))
            } else {
                vec![0; n]
            };
            g.iter()
                .zip(bg.iter().zip(&bc))
                .map(|(g, (bg, bc))| g.wrapping_add(*bc).wrapping_sub(bg.wrapping_mul(2)))
                .collect()
        }
    })
}

/// A form over the sign select's terms (the input's, then the truncation's `r63` and `q`).
fn form<'a, C: Comparison>(
    constant: Vec<Elem>,
    coeffs: Vec<Vec<Elem>>,
    mat: &'a SymmetricMaterial<C>,
) -> Form<'a> {
    let shares: Vec<&[Elem]> = mat
        .x_terms
        .iter()
        .map(Vec::as_slice)
        .chain(mat.inner.trunc_parts())
        .collect();
    Form {
        constant,
        terms: coeffs.into_iter().zip(shares).collect(),
    }
}

/// The communication of [`eval`] on `n` elements.
pub fn trace<C: Comparison>(cmp: &C, n: usize, s: &Symmetric) -> Trace {
    mask::open_trace(n)
        .then(cmp.select_trace(n, &selection(s, 0)))
        .then(smooth::trace(cmp, n, &s.half, 0))
}

/// Closed-form online cost of [`eval`] (module docs).
pub fn cost<C: Comparison>(cmp: &C, n: usize, s: &Symmetric) -> Cost {
    mask::open_cost(n)
        .then(cmp.select_cost(n, &selection(s, 0)))
        .then(smooth::cost(cmp, n, &s.half, 0))
}

/// Closed-form dealer bytes of [`deal`] (module docs).
pub fn offline_bytes<C: Comparison>(cmp: &C, n: usize, s: &Symmetric, k: u32) -> u64 {
    let dealt = if k == 0 { 0 } else { 16 * n as u64 };
    dealt
        + cmp.select_offline_bytes(n, &selection(s, k))
        + smooth::offline_bytes(cmp, n, &s.half, 0)
}
