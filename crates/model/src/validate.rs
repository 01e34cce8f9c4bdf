//! The one check a [`Network`] passes before anything is built from it.
//!
//! A network may come from a peer (the dealer and the client rebuild the
//! plan from the architecture the provider or a client sends), so every
//! property the plan builder, the protocols and the kernels rely on is
//! checked here, with checked arithmetic, **before** anything is allocated
//! from the description's sizes:
//!
//! - value ids: node `i` reads only values `0..=i` (the input and earlier
//!   nodes), with the arity its operator needs;
//! - shapes: every value has rank 1 to [`MAX_RANK`], no zero dimension and
//!   at most [`MAX_VALUE_ELEMENTS`] elements; element-wise operators keep
//!   their input's shape; binary operators read values of the same size;
//! - geometry: kernel, stride and dilation at least 1, channel groups that
//!   divide the channels, pooling padding smaller than the window, a kernel
//!   that fits the padded input, the output shape the geometry gives, and
//!   the input shape the geometry reads;
//! - parameters: weight tensors of the shape the geometry needs, holding
//!   exactly that many values (or none, in a public network), biases and
//!   per-channel parameters of the right length, all finite;
//! - totals: at most [`MAX_NODES`] nodes, [`MAX_LAYER_WEIGHTS`] weights per
//!   layer, [`MAX_TOTAL_WEIGHTS`] in all, [`MAX_PLAN_ELEMENTS`] value
//!   elements and pooling-window entries per record, and [`MAX_MACS`]
//!   multiply-accumulates per record.
//!
//! The limits are far above the largest benchmark network (`minionn-cifar`:
//! 65,536 elements in its largest value, about 170,000 weights, about 2^26
//! multiply-accumulates) and leave room for ResNet-50-sized models, while
//! bounding what a hostile description can make a party allocate to a few
//! hundred megabytes.
//!
//! [`validate`] returns every problem (node name, operator, what is wrong),
//! not just the first. [`check_node`] checks one node against the values
//! before it; the ONNX importer runs it as it builds each node.

use cryptmed_ring::kernels::{Conv2dGeom, Pool2dGeom};

use crate::ir::{Activation, Network, Node, Op, Tensor, ValueId};

/// Most elements of one value (one record's tensor): 2^24 (128 MiB of ring elements).
pub const MAX_VALUE_ELEMENTS: usize = 1 << 24;
/// Most weights (and biases) of one layer: 2^24.
pub const MAX_LAYER_WEIGHTS: usize = 1 << 24;
/// Most weights of the whole network: 2^26.
pub const MAX_TOTAL_WEIGHTS: usize = 1 << 26;
/// Most elements of all values plus all pooling-window entries, per record: 2^26.
/// This bounds the plan and the per-record material.
pub const MAX_PLAN_ELEMENTS: usize = 1 << 26;
/// Most multiply-accumulates of all linear layers, per record: 2^34.
pub const MAX_MACS: u64 = 1 << 34;
/// Most nodes: 2^16.
pub const MAX_NODES: usize = 1 << 16;
/// Highest rank of a value's shape.
pub const MAX_RANK: usize = 8;
/// Largest kernel size, stride, dilation or padding (any larger cannot fit a value).
pub const MAX_GEOMETRY: usize = MAX_VALUE_ELEMENTS;
/// Problems shown in an [`InvalidNetwork`]'s message (all are in its `problems`).
pub const SHOWN_PROBLEMS: usize = 32;
/// Characters of a node name kept in messages (names may come from a peer).
const NAME_CHARS: usize = 64;

/// One thing wrong with a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The node's name (`None` for the network as a whole: input shape, totals).
    pub node: Option<String>,
    /// The node's operator (`network` for the network as a whole).
    pub op: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(n) => write!(f, "node {} ({}): {}", printable(n), self.op, self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A network that fails validation, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {}: {}", printable(.network), shown(.problems))]
pub struct InvalidNetwork {
    /// The network's name.
    pub network: String,
    /// Every problem, in node order (network-wide ones first or last).
    pub problems: Vec<Problem>,
}

fn shown(problems: &[Problem]) -> String {
    let mut s: Vec<String> = problems
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(Problem::to_string)
        .collect();
    if problems.len() > SHOWN_PROBLEMS {
        s.push(format!(
            "and {} more problems",
            problems.len() - SHOWN_PROBLEMS
        ));
    }
    s.join("; ")
}

/// A name safe to print: control characters replaced, at most 64 characters.
pub fn printable(name: &str) -> String {
    let mut s: String = name
        .chars()
        .take(NAME_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > NAME_CHARS {
        s.push_str("...");
    }
    s
}

/// Checks the whole network; every problem is returned.
pub fn validate(net: &Network) -> Result<(), InvalidNetwork> {
    let mut problems = Vec::new();
    let whole = |message: String| Problem {
        node: None,
        op: "network",
        message,
    };
    if let Err(m) = check_shape(&net.input_shape) {
        problems.push(whole(format!("the input shape {}", m)));
    }
    if net.nodes.is_empty() {
        problems.push(whole("the network has no nodes".into()));
    }
    if let Some(s) = &net.schema {
        problems.extend(s.problems(net.input_len()).into_iter().map(&whole));
    }
    if let Some(p) = &net.preprocessing {
        problems.extend(p.problems(&net.input_shape).into_iter().map(&whole));
    }
    if net.nodes.len() > MAX_NODES {
        problems.push(whole(format!(
            "{} nodes, above the limit of {MAX_NODES}",
            net.nodes.len()
        )));
        // Do not spend time on a description this large.
        return Err(InvalidNetwork {
            network: net.name.clone(),
            problems,
        });
    }
    let mut total = Cost {
        elements: elements(&net.input_shape).unwrap_or(0),
        ..Cost::default()
    };
    for (i, node) in net.nodes.iter().enumerate() {
        let found = check_node(net, i);
        if found.is_empty() {
            let c = cost(net, node);
            if c.weights > MAX_LAYER_WEIGHTS {
                problems.push(at(
                    node,
                    format!(
                        "{} weights, above the limit of {MAX_LAYER_WEIGHTS} per layer",
                        c.weights
                    ),
                ));
            }
            total.add(&c);
        }
        problems.extend(found.into_iter().map(|m| at(node, m)));
    }
    if total.weights > MAX_TOTAL_WEIGHTS {
        problems.push(whole(format!(
            "{} weights in all, above the limit of {MAX_TOTAL_WEIGHTS}",
            total.weights
        )));
    }
    if total.elements > MAX_PLAN_ELEMENTS {
        problems.push(whole(format!(
            "{} value elements and pooling-window entries per record, above the limit of {MAX_PLAN_ELEMENTS}",
            total.elements
        )));
    }
    if total.macs > MAX_MACS {
        problems.push(whole(format!(
            "{} multiply-accumulates per record, above the limit of {MAX_MACS}",
            total.macs
        )));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidNetwork {
            network: net.name.clone(),
            problems,
        })
    }
}

fn at(node: &Node, message: String) -> Problem {
    Problem {
        node: Some(node.name.clone()),
        op: node.op.name(),
        message,
    }
}

/// Checks node `index` of `net` against the values before it (ids, arity,
/// shapes, geometry, parameters, the per-value limit). Returns what is wrong,
/// without the node's name (the caller adds it); empty when the node is fine.
/// Totals over the network are [`validate`]'s.
pub fn check_node(net: &Network, index: usize) -> Vec<String> {
    let Some(node) = net.nodes.get(index) else {
        return vec![format!("there is no node {index}")];
    };
    let mut p = Vec::new();
    let arity = match node.op {
        Op::Add | Op::Mul => 2,
        _ => 1,
    };
    if matches!(node.op, Op::Concat) {
        if node.inputs.is_empty() {
            p.push("reads no value; concat reads one or more".into());
        }
    } else if node.inputs.len() != arity {
        p.push(format!(
            "reads {} values; {} reads exactly {arity}",
            node.inputs.len(),
            node.op.name()
        ));
    }
    for &v in &node.inputs {
        if v > index {
            p.push(format!(
                "reads value {v}, which is not computed before it (value 0 is the input, value i + 1 is node i's output; this is node {index})"
            ));
        }
    }
    let own = check_shape(&node.shape)
        .err()
        .map(|m| format!("its output shape {m}"));
    // Earlier values: an invalid one was reported where it was made.
    let ins: Vec<&[usize]> = node.inputs.iter().map(|v| value_shape(net, *v)).collect();
    if !p.is_empty() || ins.iter().any(|s| check_shape(s).is_err()) {
        p.extend(own);
        return p;
    }
    op_rules(&mut p, &node.op, &ins, &node.shape);
    // A geometry problem explains a zero output dimension; say it only once.
    let geometric = matches!(
        node.op,
        Op::Conv2d { .. } | Op::AvgPool { .. } | Op::MaxPool { .. }
    );
    if p.is_empty() || !geometric {
        p.extend(own);
    }
    p
}

/// The rules of one operator, given valid input shapes (the output shape may be invalid).
fn op_rules(p: &mut Vec<String>, op: &Op, ins: &[&[usize]], out: &[usize]) {
    let in_len = elements(ins[0]).unwrap_or(0);
    let out_len = elements(out).unwrap_or(0);
    match op {
        Op::Dense { weight, bias } => dense(p, weight, bias.as_deref(), in_len, out_len),
        Op::Conv2d { geom, weight, bias } => conv(p, geom, weight, bias.as_deref(), ins[0], out),
        Op::AvgPool { geom, .. } | Op::MaxPool { geom } => pool(p, geom, ins[0], out),
        Op::GlobalAvgPool => {
            if ins[0].len() != 3 {
                p.push(format!("reads shape {:?}; it needs [C, H, W]", ins[0]));
            } else if out_len != ins[0][0] {
                p.push(format!(
                    "output shape {out:?} for {} channels (one mean per channel)",
                    ins[0][0]
                ));
            }
        }
        Op::Affine { scale, shift } => {
            same_shape(p, ins[0], out);
            let ch = ins[0][0];
            for (what, v) in [("scale", scale), ("shift", shift)] {
                if v.len() != 1 && v.len() != ch {
                    p.push(format!(
                        "{what} of {} values for {ch} channels (1 or one per channel)",
                        v.len()
                    ));
                }
                finite(p, what, v);
            }
        }
        Op::Act(a) => {
            same_shape(p, ins[0], out);
            if let Activation::LeakyRelu { alpha } | Activation::Elu { alpha } = a
                && !alpha.is_finite()
            {
                p.push(format!("alpha {alpha} is not finite"));
            }
            if let Activation::Clip { min, max } = a {
                clip_bounds(p, *min, *max);
            }
        }
        Op::Reshape | Op::Softmax => {
            if in_len != out_len {
                p.push(format!(
                    "output shape {out:?} ({out_len} elements) for an input of shape {:?} ({in_len} elements)",
                    ins[0]
                ));
            }
        }
        Op::Concat => concat(p, ins, out),
        Op::Add | Op::Mul => {
            let other = elements(ins[1]).unwrap_or(0);
            if in_len != other || out_len != in_len {
                p.push(format!(
                    "element-wise {} of shapes {:?} and {:?} into {out:?} (all must have the same number of elements)",
                    op.name(),
                    ins[0],
                    ins[1]
                ));
            }
        }
    }
}

/// Concatenation along axis 0: every input agrees with the output on the
/// other dimensions, and the output's first dimension is the inputs' sum.
fn concat(p: &mut Vec<String>, ins: &[&[usize]], out: &[usize]) {
    let rest_ok = ins
        .iter()
        .all(|s| s.len() == out.len() && !s.is_empty() && s[1..] == out[1..]);
    let total = ins.iter().try_fold(0usize, |a, s| a.checked_add(s[0]));
    if !rest_ok || out.is_empty() || total != Some(out[0]) {
        p.push(format!(
            "concatenates shapes {ins:?} into {out:?} (along the first axis: the other dimensions must agree and the first ones add up)"
        ));
    }
}

/// Clip bounds: finite where present, and `min <= max`.
fn clip_bounds(p: &mut Vec<String>, min: Option<f64>, max: Option<f64>) {
    for (what, v) in [("min", min), ("max", max)] {
        if let Some(v) = v.filter(|v| !v.is_finite()) {
            p.push(format!("clip {what} {v} is not finite"));
        }
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        p.push(format!("clip bounds {lo} > {hi}"));
    }
}

/// The shape of value `v`, or an empty shape when there is no such value.
fn value_shape(net: &Network, v: ValueId) -> &[usize] {
    if v == 0 {
        &net.input_shape
    } else {
        net.nodes.get(v - 1).map_or(&[], |n| n.shape.as_slice())
    }
}

/// The number of elements of `shape`, if it does not overflow.
pub fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d))
}

/// Checks a value's shape: rank 1 to [`MAX_RANK`], no zero dimension, at most
/// [`MAX_VALUE_ELEMENTS`] elements; the error completes "the shape ...".
pub fn check_shape(shape: &[usize]) -> Result<(), String> {
    if shape.is_empty() || shape.len() > MAX_RANK {
        return Err(format!(
            "{shape:?} has rank {} (1 to {MAX_RANK} expected)",
            shape.len()
        ));
    }
    if shape.contains(&0) {
        return Err(format!("{shape:?} has a zero dimension"));
    }
    match elements(shape) {
        Some(n) if n <= MAX_VALUE_ELEMENTS => Ok(()),
        Some(n) => Err(format!(
            "{shape:?} has {n} elements, above the limit of {MAX_VALUE_ELEMENTS}"
        )),
        None => Err(format!(
            "{shape:?} has more elements than the limit of {MAX_VALUE_ELEMENTS}"
        )),
    }
}

fn same_shape(p: &mut Vec<String>, input: &[usize], out: &[usize]) {
    if input != out {
        p.push(format!(
            "output shape {out:?} differs from its input's {input:?} (an element-wise operator keeps the shape)"
        ));
    }
}

fn finite(p: &mut Vec<String>, what: &str, v: &[f64]) {
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        p.push(format!("{what} {i} is {x}, not a finite number"));
    }
}

/// Weights of `shape` (checked against `want`), holding all their values or none (public).
fn weights(p: &mut Vec<String>, weight: &Tensor, want: &[usize]) -> bool {
    if weight.shape != want {
        p.push(format!(
            "weights of shape {:?}; the geometry needs {want:?}",
            weight.shape
        ));
        return false;
    }
    let Some(n) = elements(want).filter(|n| *n <= MAX_LAYER_WEIGHTS) else {
        p.push(format!(
            "weights of shape {want:?}: more than the limit of {MAX_LAYER_WEIGHTS} per layer"
        ));
        return false;
    };
    if !weight.data.is_empty() && weight.data.len() != n {
        p.push(format!(
            "weights hold {} values for shape {want:?} ({n} expected, or none in a public network)",
            weight.data.len()
        ));
        return false;
    }
    finite(p, "weight", &weight.data);
    true
}

/// A bias of `outs` values, or none; an empty bias only beside empty (public) weights.
fn bias_len(p: &mut Vec<String>, bias: Option<&[f64]>, outs: usize, public: bool) {
    let Some(b) = bias else { return };
    if b.len() == outs || (b.is_empty() && public) {
        finite(p, "bias", b);
    } else {
        p.push(format!("bias of {} values for {outs} outputs", b.len()));
    }
}

fn dense(p: &mut Vec<String>, w: &Tensor, bias: Option<&[f64]>, in_len: usize, out_len: usize) {
    let [rows, cols] = w.shape[..] else {
        p.push(format!(
            "weights of shape {:?}; a dense layer needs [outputs, inputs]",
            w.shape
        ));
        return;
    };
    if cols != in_len || rows != out_len {
        p.push(format!(
            "weights of shape [{rows}, {cols}] map {cols} inputs to {rows} outputs; the input has {in_len} elements and the output {out_len}"
        ));
        return;
    }
    if weights(p, w, &[rows, cols]) {
        bias_len(p, bias, rows, w.data.is_empty());
    }
}

/// A sliding window over a CHW input (convolution or pooling): checks the
/// input shape against the geometry's `chw` and both axes; the output
/// height and width where they are valid.
fn window(
    p: &mut Vec<String>,
    input: &[usize],
    chw: [usize; 3],
    kernel: [usize; 2],
    stride: [usize; 2],
    pads: [usize; 4],
    dilation: [usize; 2],
) -> (Option<usize>, Option<usize>) {
    if input != chw {
        p.push(format!("reads shape {input:?}; the geometry reads {chw:?}"));
    }
    let oh = axis(
        p,
        "height",
        chw[1],
        kernel[0],
        stride[0],
        [pads[0], pads[2]],
        dilation[0],
    );
    let ow = axis(
        p,
        "width",
        chw[2],
        kernel[1],
        stride[1],
        [pads[1], pads[3]],
        dilation[1],
    );
    (oh, ow)
}

/// `dilation * (kernel - 1) + 1` fits in `input + pads`; the output length along one axis.
fn axis(
    p: &mut Vec<String>,
    what: &str,
    input: usize,
    kernel: usize,
    stride: usize,
    pads: [usize; 2],
    dilation: usize,
) -> Option<usize> {
    let mut ok = true;
    for (name, v) in [
        ("kernel", kernel),
        ("stride", stride),
        ("dilation", dilation),
    ] {
        if v == 0 || v > MAX_GEOMETRY {
            p.push(format!(
                "{name} {v} along the {what} (must be 1 to {MAX_GEOMETRY})"
            ));
            ok = false;
        }
    }
    if pads.iter().any(|v| *v > MAX_GEOMETRY) {
        p.push(format!(
            "padding {pads:?} along the {what} (at most {MAX_GEOMETRY})"
        ));
        ok = false;
    }
    if !ok {
        return None;
    }
    // All four are at most 2^24: no overflow in u64.
    let (input, kernel, stride, dilation) =
        (input as u64, kernel as u64, stride as u64, dilation as u64);
    let padded = input + pads[0] as u64 + pads[1] as u64;
    let span = dilation * (kernel - 1) + 1;
    if span > padded {
        p.push(format!(
            "the kernel of {kernel} (spanning {span} with dilation {dilation}) does not fit the {what} of {input} padded by {pads:?}"
        ));
        return None;
    }
    usize::try_from((padded - span) / stride + 1).ok()
}

fn conv(
    p: &mut Vec<String>,
    g: &Conv2dGeom,
    w: &Tensor,
    bias: Option<&[f64]>,
    input: &[usize],
    out: &[usize],
) {
    let before = p.len();
    if g.in_ch == 0 || g.out_ch == 0 {
        p.push(format!(
            "{} input and {} output channels (at least 1 each)",
            g.in_ch, g.out_ch
        ));
    }
    if g.groups == 0 || !g.in_ch.is_multiple_of(g.groups) || !g.out_ch.is_multiple_of(g.groups) {
        p.push(format!(
            "{} groups do not divide {} input and {} output channels",
            g.groups, g.in_ch, g.out_ch
        ));
    }
    let (oh, ow) = window(
        p,
        input,
        [g.in_ch, g.in_h, g.in_w],
        g.kernel,
        g.stride,
        g.pads,
        g.dilation,
    );
    if p.len() > before {
        return;
    }
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return;
    };
    if out != [g.out_ch, oh, ow] {
        p.push(format!(
            "output shape {out:?}; the geometry gives [{}, {oh}, {ow}]",
            g.out_ch
        ));
        return;
    }
    if weights(
        p,
        w,
        &[g.out_ch, g.in_ch / g.groups, g.kernel[0], g.kernel[1]],
    ) {
        bias_len(p, bias, g.out_ch, w.data.is_empty());
    }
}

fn pool(p: &mut Vec<String>, g: &Pool2dGeom, input: &[usize], out: &[usize]) {
    let before = p.len();
    let (oh, ow) = window(
        p,
        input,
        [g.ch, g.in_h, g.in_w],
        g.kernel,
        g.stride,
        g.pads,
        [1, 1],
    );
    if p.len() > before {
        return;
    }
    // A window entirely in the padding would be empty.
    if g.pads[0].max(g.pads[2]) >= g.kernel[0] || g.pads[1].max(g.pads[3]) >= g.kernel[1] {
        p.push(format!(
            "padding {:?} must be smaller than the {}x{} window",
            g.pads, g.kernel[0], g.kernel[1]
        ));
        return;
    }
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return;
    };
    if out != [g.ch, oh, ow] {
        p.push(format!(
            "output shape {out:?}; the geometry gives [{}, {oh}, {ow}]",
            g.ch
        ));
    }
}

/// What a valid node costs per record.
#[derive(Debug, Default)]
struct Cost {
    weights: usize,
    elements: usize,
    macs: u64,
}

impl Cost {
    fn add(&mut self, o: &Cost) {
        self.weights = self.weights.saturating_add(o.weights);
        self.elements = self.elements.saturating_add(o.elements);
        self.macs = self.macs.saturating_add(o.macs);
    }
}

/// The cost of a node that passed [`check_node`] (sizes are bounded, so no overflow).
fn cost(net: &Network, node: &Node) -> Cost {
    let out = elements(&node.shape).unwrap_or(0);
    let param = |w: &Tensor, b: &Option<Vec<f64>>| {
        elements(&w.shape)
            .unwrap_or(usize::MAX)
            .saturating_add(b.as_ref().map_or(0, Vec::len))
    };
    let mut c = Cost {
        elements: out,
        ..Cost::default()
    };
    match &node.op {
        Op::Dense { weight, bias } => {
            c.weights = param(weight, bias);
            c.macs = elements(&weight.shape).unwrap_or(usize::MAX) as u64;
        }
        Op::Conv2d { geom, weight, bias } => {
            c.weights = param(weight, bias);
            let per_output = (geom.in_ch / geom.groups.max(1)) as u64
                * geom.kernel[0] as u64
                * geom.kernel[1] as u64;
            c.macs = (out as u64).saturating_mul(per_output);
        }
        Op::AvgPool { geom, .. } | Op::MaxPool { geom } => {
            // The plan lists every window's entries.
            let taps = (out as u64).saturating_mul(geom.kernel[0] as u64 * geom.kernel[1] as u64);
            c.elements = out.saturating_add(usize::try_from(taps).unwrap_or(usize::MAX));
        }
        Op::GlobalAvgPool => {
            let input = elements(value_shape(net, node.inputs[0])).unwrap_or(0);
            c.elements = out.saturating_add(input);
        }
        Op::Affine { .. } => {
            // Unless folded, the plan runs it as an element-wise layer with `out` weights.
            c.weights = out;
            c.macs = out as u64;
        }
        Op::Mul => c.macs = out as u64,
        _ => {}
    }
    c
}

impl Network {
    /// Checks the network ([`validate`]): every problem, or `Ok`.
    pub fn validate(&self) -> Result<(), InvalidNetwork> {
        validate(self)
    }
}
