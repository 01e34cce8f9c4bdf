//! Linear layers with the provider's fixed weights: the reusable-mask
//! protocol (DESIGN.md section 4).
//!
//! **Setup, once per session and layer.** The provider's seed gives it a
//! uniform mask `B` shaped like `W` (the dealer derives the same `B`); the
//! provider sends `M = W + B` to the client (`8|W|` bytes). `M` reveals
//! nothing about `W`.
//!
//! **Per record.** The client's seed gives it a uniform `R` shaped like the
//! input; the dealer sends the client its share of `op(B, R)` (the provider's
//! share is seeded). The client sends `u = x_1 - R` (`8|x|` bytes, one way,
//! merged into the round of whatever follows). The provider's share is
//! `op(W, x_0 + u) - [op(B,R)]_0 + bias`; the client's is
//! `op(M, R) - [op(B,R)]_1`, input-independent, computed offline. Their sum
//! is `op(W, x_0 + x_1)`. Works for any operator bilinear in `(W, x)`.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_ring::Elem;
use cryptmed_ring::kernels::{Conv2dGeom, Scalar, matvec, matvec_batch};
use cryptmed_share::Role;
use cryptmed_share::open::{recv_elems, send_elems};

use crate::cost::{Cost, Trace};
use crate::{Ctx, ProtocolError};

/// A bilinear operator `op(W, x)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bilinear {
    /// `W x` with `W` of shape `[rows, cols]`.
    Dense {
        /// Outputs.
        rows: usize,
        /// Inputs.
        cols: usize,
    },
    /// 2-D convolution.
    Conv(Conv2dGeom),
    /// Element-wise `w * x` (an affine layer with private per-element scales).
    Diagonal {
        /// Elements.
        len: usize,
    },
}

impl Bilinear {
    /// Input length of one record.
    pub fn in_len(&self) -> usize {
        match self {
            Bilinear::Dense { cols, .. } => *cols,
            Bilinear::Conv(g) => g.in_len(),
            Bilinear::Diagonal { len } => *len,
        }
    }

    /// Output length of one record.
    pub fn out_len(&self) -> usize {
        match self {
            Bilinear::Dense { rows, .. } => *rows,
            Bilinear::Conv(g) => g.out_len(),
            Bilinear::Diagonal { len } => *len,
        }
    }

    /// Number of weights.
    pub fn weight_len(&self) -> usize {
        match self {
            Bilinear::Dense { rows, cols } => rows * cols,
            Bilinear::Conv(g) => g.weight_len(),
            Bilinear::Diagonal { len } => *len,
        }
    }

    /// `op(w, x)` for one record.
    pub fn apply<T: Scalar>(&self, w: &[T], x: &[T]) -> Vec<T> {
        match self {
            Bilinear::Dense { rows, cols } => matvec(w, *rows, *cols, x),
            Bilinear::Conv(g) => g.apply(w, x),
            Bilinear::Diagonal { .. } => w.iter().zip(x).map(|(a, b)| a.mul(*b)).collect(),
        }
    }

    /// `op(w, x)` for consecutive records, in one kernel call per layer
    /// (a dense layer over a batch is one matrix product; the cores are
    /// shared over all records).
    pub fn apply_batch<T: Scalar>(&self, w: &[T], xs: &[T]) -> Vec<T> {
        match self {
            Bilinear::Dense { rows, cols } => matvec_batch(w, *rows, *cols, xs),
            Bilinear::Conv(g) => g.apply_batch(w, xs),
            Bilinear::Diagonal { .. } => xs
                .chunks_exact(self.in_len())
                .flat_map(|x| self.apply(w, x))
                .collect(),
        }
    }
}

/// Dealer: the provider's weight mask `B` (seeded, nothing sent). Returns `B`.
pub fn deal_setup(d: &mut Dealer, op: &Bilinear) -> Vec<Elem> {
    d.private(Role::Provider, op.weight_len())
}

/// Party: the provider's `B` (the client gets `None`).
pub fn take_setup(p: &mut dyn PrepSource, op: &Bilinear) -> Option<Vec<Elem>> {
    p.private(Role::Provider, op.weight_len())
}

/// Provider: sends `M = W + B` to the client.
pub fn send_masked_weights(ctx: &mut Ctx<'_>, w: &[Elem], b: &[Elem]) -> Result<(), ProtocolError> {
    Ok(send_elems(ctx.ch, &cryptmed_ring::add(w, b))?)
}

/// Client: receives `M`.
pub fn recv_masked_weights(ctx: &mut Ctx<'_>, op: &Bilinear) -> Result<Vec<Elem>, ProtocolError> {
    Ok(recv_elems(ctx.ch, op.weight_len())?)
}

/// Dealer: per-record material for `batch` records, given the setup mask `b`.
pub fn deal(d: &mut Dealer, op: &Bilinear, b: &[Elem], batch: usize) {
    for _ in 0..batch {
        let r = d.private(Role::Client, op.in_len());
        d.share_arith(&op.apply(b, &r));
    }
}

/// This party's per-batch material.
pub struct LinearMaterial {
    /// Client: the masks `R` of every record.
    r: Vec<Elem>,
    /// Provider: its shares of `op(B, R)`; client: its precomputed output
    /// shares `op(M, R) - [op(B, R)]_1`.
    y: Vec<Elem>,
}

/// Party: mirror of [`deal`]; the client passes `M` and precomputes its output shares.
pub fn take(
    p: &mut dyn PrepSource,
    op: &Bilinear,
    batch: usize,
    masked_weights: Option<&[Elem]>,
) -> LinearMaterial {
    let mut r = Vec::new();
    let mut y = Vec::with_capacity(batch * op.out_len());
    for _ in 0..batch {
        let ri = p.private(Role::Client, op.in_len());
        let br = p.share_arith(op.out_len());
        match (ri, masked_weights) {
            (Some(ri), Some(m)) => {
                y.extend(cryptmed_ring::sub(&op.apply(m, &ri), &br));
                r.extend(ri);
            }
            _ => y.extend(br),
        }
    }
    LinearMaterial { r, y }
}

/// What each party brings to the layer.
pub enum Holder<'a> {
    /// The provider's encoded weights and bias (bias at the output's scale).
    Provider {
        /// Weights.
        weights: &'a [Elem],
        /// Bias per output channel (or per output for dense layers).
        bias: Option<&'a [Elem]>,
    },
    /// The client (its masked weights were used offline).
    Client,
}

/// Shares of `op(W, x) + bias` for `x` holding consecutive records.
pub fn eval(
    ctx: &mut Ctx<'_>,
    op: &Bilinear,
    holder: Holder<'_>,
    x: &[Elem],
    mat: &LinearMaterial,
) -> Result<Vec<Elem>, ProtocolError> {
    match holder {
        Holder::Client => {
            send_elems(ctx.ch, &cryptmed_ring::sub(x, &mat.r))?;
            Ok(mat.y.clone())
        }
        Holder::Provider { weights, bias } => {
            let u = recv_elems(ctx.ch, x.len())?;
            let xu = cryptmed_ring::add(x, &u);
            let mut y = op.apply_batch(weights, &xu);
            cryptmed_ring::sub_assign(&mut y, &mat.y);
            if let Some(bias) = bias {
                let per = op.out_len() / bias.len();
                for rec in y.chunks_exact_mut(op.out_len()) {
                    for (i, v) in rec.iter_mut().enumerate() {
                        *v = v.wrapping_add(bias[i / per]);
                    }
                }
            }
            Ok(y)
        }
    }
}

/// The communication of [`eval`] for `batch` records.
pub fn trace(op: &Bilinear, batch: usize) -> Trace {
    Trace::client_to_provider(8 * (batch * op.in_len()) as u64)
}

/// The one-time setup communication (masked weights).
pub fn setup_trace(op: &Bilinear) -> Trace {
    Trace::provider_to_client(8 * op.weight_len() as u64)
}

/// Closed-form cost of [`eval`]: `8 batch |x|` bytes client to provider, 1
/// round (merged into the next protocol's first round inside a network).
pub fn cost(op: &Bilinear, batch: usize) -> Cost {
    Cost::new(8 * (batch * op.in_len()) as u64, 1)
}

/// Closed-form dealer bytes of [`deal`] for `batch` records: `8 batch |y|`
/// (the client's share of `op(B, R)` per output; `R` and the provider's share are seeded).
pub fn offline_bytes(op: &Bilinear, batch: usize) -> u64 {
    8 * (batch * op.out_len()) as u64
}

/// Closed-form cost of the setup: `8 |W|` bytes provider to client, 1 round.
pub fn setup_cost(op: &Bilinear) -> Cost {
    Cost::new(8 * op.weight_len() as u64, 1)
}
