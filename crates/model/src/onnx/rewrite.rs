//! Exact rewrites after import: fold affine maps into the preceding linear
//! layer, recognise SiLU and the erf form of GELU, drop dead nodes.

use crate::ir::{Activation, Network, Op, ValueId};

/// Runs every rewrite until nothing changes, then removes dead nodes.
pub(super) fn simplify(net: &mut Network) {
    while merge_affine(net) || fold_affine(net) || silu(net) || gelu(net) || gelu_tanh(net) {}
    prune(net);
}

/// Which values the output depends on (a rewrite leaves dead nodes behind until [`prune`]).
fn live(net: &Network) -> Vec<bool> {
    let n = net.nodes.len();
    let mut live = vec![false; n + 1];
    live[n] = true;
    for v in (1..=n).rev() {
        if live[v] {
            for x in &net.nodes[v - 1].inputs {
                live[*x] = true;
            }
        }
    }
    live
}

/// How many live nodes read each value (dead readers must not block a fold).
fn consumers(net: &Network) -> Vec<usize> {
    let n = net.nodes.len();
    let live = live(net);
    let mut c = vec![0; n + 1];
    for (k, node) in net.nodes.iter().enumerate() {
        if live[k + 1] {
            for i in &node.inputs {
                c[*i] += 1;
            }
        }
    }
    if let Some(last) = c.last_mut() {
        *last += 1; // the output
    }
    c
}

fn is_affine(op: &Op, scale: f64, shift: f64) -> bool {
    matches!(op, Op::Affine { scale: s, shift: t } if s.len() == 1 && t.len() == 1 && (s[0] - scale).abs() < 1e-6 && (t[0] - shift).abs() < 1e-6)
}

/// `Affine(Dense|Conv(x))` with the linear output used once: scale the weights, adjust the bias.
fn fold_affine(net: &mut Network) -> bool {
    let c = consumers(net);
    let live = live(net);
    for i in 0..net.nodes.len() {
        let Op::Affine { scale, shift } = net.nodes[i].op.clone() else {
            continue;
        };
        if !live[i + 1] {
            continue;
        }
        let src = net.nodes[i].inputs[0];
        if src == 0 || c[src] != 1 {
            continue;
        }
        let prev = &mut net.nodes[src - 1];
        let (weight, bias, outs) = match &mut prev.op {
            Op::Dense { weight, bias } => (weight, bias, prev.shape[0]),
            Op::Conv2d { weight, bias, geom } => (weight, bias, geom.out_ch),
            _ => continue,
        };
        if !(scale.len() == 1 || scale.len() == outs) || !(shift.len() == 1 || shift.len() == outs)
        {
            continue;
        }
        let at = |v: &[f64], o: usize| if v.len() == 1 { v[0] } else { v[o] };
        let per = weight.data.len() / outs;
        for o in 0..outs {
            for w in &mut weight.data[o * per..(o + 1) * per] {
                *w *= at(&scale, o);
            }
        }
        let b = bias.get_or_insert_with(|| vec![0.0; outs]);
        for (o, bo) in b.iter_mut().enumerate() {
            *bo = *bo * at(&scale, o) + at(&shift, o);
        }
        // The affine node becomes a pass-through of the folded layer.
        net.nodes[i].op = Op::Reshape;
        return true;
    }
    false
}

/// `Affine(Affine(x))` with the inner one used once -> one affine map (exact).
fn merge_affine(net: &mut Network) -> bool {
    let c = consumers(net);
    let live = live(net);
    for i in 0..net.nodes.len() {
        let Op::Affine {
            scale: s2,
            shift: t2,
        } = net.nodes[i].op.clone()
        else {
            continue;
        };
        if !live[i + 1] {
            continue;
        }
        let src = net.nodes[i].inputs[0];
        if src == 0 || c[src] != 1 {
            continue;
        }
        let Op::Affine {
            scale: s1,
            shift: t1,
        } = net.nodes[src - 1].op.clone()
        else {
            continue;
        };
        let n = [s1.len(), t1.len(), s2.len(), t2.len()]
            .into_iter()
            .max()
            .unwrap_or(1);
        if [s1.len(), t1.len(), s2.len(), t2.len()]
            .iter()
            .any(|l| *l != 1 && *l != n)
        {
            continue;
        }
        let at = |v: &[f64], k: usize| if v.len() == 1 { v[0] } else { v[k] };
        let scale = (0..n).map(|k| at(&s2, k) * at(&s1, k)).collect();
        let shift = (0..n)
            .map(|k| at(&s2, k) * at(&t1, k) + at(&t2, k))
            .collect();
        net.nodes[i].op = Op::Affine { scale, shift };
        net.nodes[i].inputs = net.nodes[src - 1].inputs.clone();
        return true;
    }
    false
}

/// `Mul(x, Sigmoid(x))` -> `SiLU(x)`.
fn silu(net: &mut Network) -> bool {
    for i in 0..net.nodes.len() {
        if net.nodes[i].op != Op::Mul {
            continue;
        }
        let (a, b) = (net.nodes[i].inputs[0], net.nodes[i].inputs[1]);
        let sig_of = |v: ValueId| {
            (v > 0 && net.nodes[v - 1].op == Op::Act(Activation::Sigmoid))
                .then(|| net.nodes[v - 1].inputs[0])
        };
        let x = match (sig_of(a), sig_of(b)) {
            (_, Some(x)) if x == a => x,
            (Some(x), _) if x == b => x,
            _ => continue,
        };
        net.nodes[i].op = Op::Act(Activation::Silu);
        net.nodes[i].inputs = vec![x];
        return true;
    }
    false
}

/// The `x` of `erf(x / sqrt 2)`, if node `e` (1-based) is that erf.
fn erf_core(net: &Network, e: ValueId) -> Option<ValueId> {
    let node = |v: ValueId| (v > 0).then(|| &net.nodes[v - 1]);
    let erf = node(e).filter(|n| n.op == Op::Act(Activation::Erf))?;
    let a =
        node(erf.inputs[0]).filter(|n| is_affine(&n.op, std::f64::consts::FRAC_1_SQRT_2, 0.0))?;
    Some(a.inputs[0])
}

/// PyTorch's exports of the erf form of GELU -> one GELU:
/// `0.5 * (x * (1 + erf(x / sqrt 2)))` (TorchScript before opset 20) or
/// `x * (0.5 + 0.5 erf(x / sqrt 2))` (dynamo, after merging the affine maps).
fn gelu(net: &mut Network) -> bool {
    for i in 0..net.nodes.len() {
        let node = |v: ValueId| (v > 0).then(|| &net.nodes[v - 1]);
        let found = match &net.nodes[i].op {
            Op::Mul => {
                let (p, q) = (net.nodes[i].inputs[0], net.nodes[i].inputs[1]);
                let half = |h: ValueId, x: ValueId| {
                    node(h)
                        .filter(|n| is_affine(&n.op, 0.5, 0.5))
                        .and_then(|n| erf_core(net, n.inputs[0]))
                        .filter(|c| *c == x)
                };
                half(q, p).or_else(|| half(p, q))
            }
            op if is_affine(op, 0.5, 0.0) => node(net.nodes[i].inputs[0])
                .filter(|m| m.op == Op::Mul)
                .and_then(|m| {
                    let (p, q) = (m.inputs[0], m.inputs[1]);
                    let one = |h: ValueId, x: ValueId| {
                        node(h)
                            .filter(|n| is_affine(&n.op, 1.0, 1.0))
                            .and_then(|n| erf_core(net, n.inputs[0]))
                            .filter(|c| *c == x)
                    };
                    one(q, p).or_else(|| one(p, q))
                }),
            _ => None,
        };
        if let Some(x) = found {
            net.nodes[i].op = Op::Act(Activation::GeluErf);
            net.nodes[i].inputs = vec![x];
            return true;
        }
    }
    false
}

/// The `x` of `tanh(k (x + c x^3))` with PyTorch's GELU constants, if node `t` (1-based) is that tanh.
fn tanh_core(net: &Network, t: ValueId) -> Option<ValueId> {
    let node = |v: ValueId| (v > 0).then(|| &net.nodes[v - 1]);
    let tanh = node(t).filter(|n| n.op == Op::Act(Activation::Tanh))?;
    let scaled = node(tanh.inputs[0])
        .filter(|n| is_affine(&n.op, (2.0 / std::f64::consts::PI).sqrt(), 0.0))?;
    let sum = node(scaled.inputs[0]).filter(|n| n.op == Op::Add)?;
    let cube_of = |v: ValueId| -> Option<ValueId> {
        let a = node(v).filter(|n| is_affine(&n.op, 0.044715, 0.0))?;
        let m = node(a.inputs[0]).filter(|n| n.op == Op::Mul)?;
        let (p, q) = (m.inputs[0], m.inputs[1]);
        let square =
            |s: ValueId, x: ValueId| node(s).is_some_and(|n| n.op == Op::Mul && n.inputs == [x, x]);
        if square(p, q) {
            Some(q)
        } else if square(q, p) {
            Some(p)
        } else {
            None
        }
    };
    let (a, b) = (sum.inputs[0], sum.inputs[1]);
    match (cube_of(b), cube_of(a)) {
        (Some(x), _) if x == a => Some(x),
        (_, Some(x)) if x == b => Some(x),
        _ => None,
    }
}

/// PyTorch's exports of `GELU(approximate="tanh")` -> one GELU (tanh form):
/// `x * (0.5 + 0.5 tanh(..))` (dynamo) or `0.5 * (x * (1 + tanh(..)))` (TorchScript).
fn gelu_tanh(net: &mut Network) -> bool {
    for i in 0..net.nodes.len() {
        let node = |v: ValueId| (v > 0).then(|| &net.nodes[v - 1]);
        let found = match &net.nodes[i].op {
            Op::Mul => {
                let (p, q) = (net.nodes[i].inputs[0], net.nodes[i].inputs[1]);
                let half = |h: ValueId, x: ValueId| {
                    node(h)
                        .filter(|n| is_affine(&n.op, 0.5, 0.5))
                        .and_then(|n| tanh_core(net, n.inputs[0]))
                        .filter(|c| *c == x)
                };
                half(q, p).or_else(|| half(p, q))
            }
            op if is_affine(op, 0.5, 0.0) => node(net.nodes[i].inputs[0])
                .filter(|m| m.op == Op::Mul)
                .and_then(|m| {
                    let (p, q) = (m.inputs[0], m.inputs[1]);
                    let one = |h: ValueId, x: ValueId| {
                        node(h)
                            .filter(|n| is_affine(&n.op, 1.0, 1.0))
                            .and_then(|n| tanh_core(net, n.inputs[0]))
                            .filter(|c| *c == x)
                    };
                    one(q, p).or_else(|| one(p, q))
                }),
            _ => None,
        };
        if let Some(x) = found {
            net.nodes[i].op = Op::Act(Activation::GeluTanh);
            net.nodes[i].inputs = vec![x];
            return true;
        }
    }
    false
}

/// Removes nodes the output does not depend on, and pass-through reshapes
/// whose shape equals their input's; renumbers value ids.
fn prune(net: &mut Network) {
    let n = net.nodes.len();
    // Redirect identity pass-throughs.
    let mut alias: Vec<ValueId> = (0..=n).collect();
    for i in 0..n {
        let v = i + 1;
        let inputs: Vec<ValueId> = net.nodes[i].inputs.iter().map(|x| alias[*x]).collect();
        net.nodes[i].inputs = inputs;
        let src = net.nodes[i].inputs[0];
        if net.nodes[i].op == Op::Reshape
            && net.shape_of(src) == net.nodes[i].shape.as_slice()
            && v != n
        {
            alias[v] = src;
        }
    }
    let live = live(net);
    let mut new_id = vec![0; n + 1];
    let mut kept = Vec::new();
    for (i, node) in net.nodes.drain(..).enumerate() {
        if live[i + 1] {
            kept.push(node);
            new_id[i + 1] = kept.len();
        }
    }
    for node in &mut kept {
        for x in &mut node.inputs {
            *x = new_id[*x];
        }
    }
    net.nodes = kept;
}
