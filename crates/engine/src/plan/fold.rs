//! Exact rewrites before lowering: per-channel affine maps (batch norm,
//! in-graph standardisation) folded into the neighbouring linear layer.
//! They depend on the architecture only (parameter lengths, not values),
//! so a public network folds the same way.

use cryptmed_model::{Network, Op, ValueId};
use cryptmed_protocols::linear::Bilinear;

use super::{Plan, StepKind};

/// Parameter of element `i` of `len` from a vector of 1 (broadcast), one per channel, or one per element.
pub(crate) fn param_at(v: &[f64], i: usize, len: usize) -> f64 {
    match v.len() {
        0 => 0.0,
        1 => v[0],
        n => v[(i / (len / n).max(1)).min(n - 1)],
    }
}

/// `consumers[v]`: the nodes (as value ids) that read value `v`.
pub(super) fn consumers(net: &Network) -> Vec<Vec<ValueId>> {
    let mut c = vec![Vec::new(); net.nodes.len() + 1];
    for (i, n) in net.nodes.iter().enumerate() {
        for x in &n.inputs {
            c[*x].push(i + 1);
        }
    }
    c
}

/// Folds every per-channel affine map (batch norm) that directly follows a
/// dense or convolution layer, as that layer's only consumer, into the
/// layer's weights and bias (exact): `s (W x + b) + t = (s W) x + (s b + t)`
/// per output channel. The affine node becomes a free reshape, so node ids
/// are unchanged. Depends on the architecture only (parameter lengths, not
/// values), so a public network folds the same way.
pub(super) fn affine_into_linear(net: &Network) -> Network {
    let mut net = net.clone();
    let consumers = consumers(&net);
    for i in 0..net.nodes.len() {
        let Op::Affine { scale, shift } = &net.nodes[i].op else {
            continue;
        };
        let src = net.nodes[i].inputs.first().copied().unwrap_or(0);
        if src == 0 || consumers[src].len() != 1 {
            continue;
        }
        let (scale, shift) = (scale.clone(), shift.clone());
        let prev = &mut net.nodes[src - 1];
        let outs = match &prev.op {
            Op::Dense { weight, .. } => weight.shape.first().copied().unwrap_or(0),
            Op::Conv2d { geom, .. } => geom.out_ch,
            _ => continue,
        };
        let per_channel = |v: &[f64]| v.len() == 1 || v.len() == outs;
        if outs == 0 || !per_channel(&scale) || !per_channel(&shift) {
            continue;
        }
        let (Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. }) = &mut prev.op else {
            continue;
        };
        let at = |v: &[f64], o: usize| if v.len() == 1 { v[0] } else { v[o] };
        let per = weight.data.len() / outs;
        for (o, row) in weight.data.chunks_mut(per.max(1)).enumerate().take(outs) {
            row.iter_mut().for_each(|w| *w *= at(&scale, o));
        }
        if !weight.data.is_empty() {
            let b = bias.get_or_insert_with(|| vec![0.0; outs]);
            for (o, bo) in b.iter_mut().enumerate() {
                *bo = *bo * at(&scale, o) + at(&shift, o);
            }
        }
        net.nodes[i].op = Op::Reshape;
    }
    net
}

/// Folds `x' = scale * x + shift` (per channel of `ch`) into the following dense layer.
pub(super) fn affine_into_dense(
    w: &mut [f64],
    bias: &mut Option<Vec<f64>>,
    rows: usize,
    cols: usize,
    scale: &[f64],
    shift: &[f64],
) {
    if w.len() != rows * cols {
        return; // a public network: no weights to fold, and the plan is the same
    }
    let at = |v: &[f64], j: usize| param_at(v, j, cols);
    let mut b = bias.take().unwrap_or_else(|| vec![0.0; rows]);
    for r in 0..rows {
        for j in 0..cols {
            let wij = w[r * cols + j];
            b[r] += wij * at(shift, j);
            w[r * cols + j] = wij * at(scale, j);
        }
    }
    *bias = Some(b);
}

/// Per-column input precision: when only dense layers read the record,
/// column `j` is encoded as `x_j 2^e_j` (at the plan's `f` bits, so with
/// `f + e_j` bits of its own) and the dense layers' column `j` of weights is
/// multiplied by `2^-e_j`, which leaves `W x` unchanged and exact in `f64`.
/// A narrow, small-valued column (a fractal dimension near 0.06
/// standardised by a deviation of 0.007) then keeps as many significant
/// bits as a column of unit scale, and a column of large values (an area in
/// thousands) gives bits to its weights instead, so each column's error is
/// relative to its own scale (the rule:
/// [`FeatureSchema::input_exponents`](cryptmed_model::FeatureSchema::input_exponents)). Depends on the architecture and the public schema only, so every
/// party derives the same exponents (they are in the plan, hence the digest).
pub(super) fn input_precision(plan: &mut Plan, exponents: &[i32]) {
    let len = plan.value_len[0];
    if exponents.len() != len || exponents.iter().all(|e| *e == 0) {
        return;
    }
    let readers: Vec<usize> = plan
        .steps
        .iter()
        .filter(|s| s.inputs.contains(&0))
        .map(|s| match s.kind {
            StepKind::Linear {
                op: Bilinear::Dense { cols, .. },
                layer,
            } if s.inputs == [0] && cols == len => Some(layer),
            _ => None,
        })
        .collect::<Option<_>>()
        .unwrap_or_default();
    if readers.is_empty() {
        return;
    }
    for layer in readers {
        let w = &mut plan.linear[layer].weight;
        for row in w.chunks_exact_mut(len) {
            for (v, e) in row.iter_mut().zip(exponents) {
                *v *= (2f64).powi(-*e);
            }
        }
    }
    plan.input_exponents = exponents.to_vec();
}
