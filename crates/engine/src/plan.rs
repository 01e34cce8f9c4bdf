//! The plan: the network as the sequence of secure steps all three roles run.
//!
//! Built deterministically from the public architecture, so the dealer, the
//! provider and the client derive the same plan; its digest (over the public
//! steps only, never weights) is checked before any material is used.
//!
//! Scales. Every value carries its number of fractional bits. Inputs are at
//! `f`; a linear layer adds `f` (weights at `f`); ReLU and the smooth
//! functions truncate back to `f` inside their own opening (a smooth output
//! is at its table's output scale: `f`, or 36 bits for exp, truncated where
//! a linear layer needs it); max pooling keeps the scale; an average over a
//! power-of-two window is free (the sum is reinterpreted at `+log2` bits);
//! additions align scales by exact left shifts. A stand-alone truncation is
//! inserted only where a linear layer would otherwise exceed `f + 8` bits.
//! The largest scale must leave [`MIN_HEADROOM_BITS`] below `2^62`
//! (checked when a model is compiled); per-channel affine maps (batch norm) right after a
//! dense or convolution layer are folded into it.
//!
//! **Steps without a protocol** (0 online bytes, 0 rounds): residual add (a
//! local sum after exact left shifts that align the scales), flatten and
//! reshape (no step at all), and average pooling over a
//! power-of-two window (a local sum, reinterpreted at `+log2(window)` bits).
//! Average pooling over any other window (or `count_include_pad = false` at
//! the borders) multiplies the local sum by the public `round(2^f / count)`:
//! free as well, but the scale grows by `f`, so unless a ReLU follows (its
//! truncation absorbs the extra bits at no cost) the next linear layer is
//! preceded by a stand-alone truncation: 16 bytes per element both ways, 1
//! round ([`trunc`](cryptmed_protocols::trunc)).

use cryptmed_approx::{Function, Precision};
use cryptmed_model::{Activation, Network, Op, ValueId};
use cryptmed_protocols::linear::Bilinear;
use cryptmed_ring::Elem;
use serde::Serialize;

use crate::EngineError;

/// Extra fractional bits of the weights of the layer that reads the record.
const INPUT_LAYER_EXTRA_BITS: u32 = 8;

/// Largest input scale a linear layer accepts before a truncation is inserted: `f + SLACK`.
const SLACK: u32 = 8;

/// Bits that the largest scale of a plan must leave below the `2^62` bound
/// of the truncation and comparison protocols: a value at scale `s` holds
/// reals up to `2^(62 - s)`, so 8 bits keep at least `[-256, 256]`
/// representable everywhere. At `f = 16` the largest scale is usually the
/// first layer's `2f + 8 = 40` (22 bits of headroom); at `f = 24` it is 56
/// and the configuration is refused.
pub const MIN_HEADROOM_BITS: u32 = 8;

/// One secure step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The network node it comes from (for reports and errors).
    pub name: String,
    /// What it does.
    pub kind: StepKind,
    /// Values read.
    pub inputs: Vec<usize>,
    /// Value written.
    pub output: usize,
    /// Elements of the output per record.
    pub len: usize,
}

/// What a step computes (public parameters only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StepKind {
    /// Reusable-mask bilinear layer; `layer` indexes the provider's weights.
    Linear {
        /// The operator (shapes only).
        #[serde(serialize_with = "ser_bilinear")]
        op: Bilinear,
        /// Index into the model's linear layers.
        layer: usize,
    },
    /// ReLU after truncating by `shift` bits.
    Relu {
        /// Truncation in bits.
        shift: u32,
    },
    /// A smooth function (or leaky ReLU) by its piecewise table, the input
    /// truncated by `shift` bits inside the step's own opening; the output at
    /// the table's output scale (the input's `f`, or finer for exp).
    Smooth {
        /// Function name (`sigmoid`, `gelu`, `leaky_relu`, ...).
        function: String,
        /// Index into the plan's tables, or into its half tables when `symmetric`.
        table: usize,
        /// Bits of the input above the table's input scale (fused truncation).
        shift: u32,
        /// Evaluated by its symmetry on a half table ([`SmoothMethod::Symmetric`](crate::SmoothMethod)).
        symmetric: bool,
    },
    /// Max over each window.
    MaxPool {
        /// Input indices of each output.
        windows: Vec<Vec<usize>>,
    },
    /// Sum over each window (average pooling), then multiply by a public constant when given.
    SumPool {
        /// Input indices of each output.
        windows: Vec<Vec<usize>>,
        /// Per-output public multiplier at scale `f` (non-power-of-two divisors).
        multiplier: Option<Vec<Elem>>,
    },
    /// Truncation by `shift` bits.
    Trunc {
        /// Bits.
        shift: u32,
    },
    /// Element-wise sum; each input first shifted left by its entry.
    Add {
        /// Left shifts aligning the two scales.
        align: [u32; 2],
    },
    /// Element-wise product (Beaver).
    Mul,
    /// Same data, new shape.
    Alias,
}

fn ser_bilinear<S: serde::Serializer>(op: &Bilinear, s: S) -> Result<S::Ok, S::Error> {
    match op {
        Bilinear::Dense { rows, cols } => s.serialize_str(&format!("dense {rows}x{cols}")),
        Bilinear::Conv(g) => s.serialize_str(&format!("{g:?}")),
        Bilinear::Diagonal { len } => s.serialize_str(&format!("diagonal {len}")),
    }
}

impl StepKind {
    /// Name of the protocol that runs the step.
    pub fn protocol(&self) -> &'static str {
        match self {
            StepKind::Linear { .. } => "reusable-mask linear",
            StepKind::Relu { shift: 0 } => "relu (ppa compare + 1-bit select)",
            StepKind::Relu { .. } => "relu + fused truncation",
            StepKind::Smooth {
                symmetric: true, ..
            } => "symmetric piecewise polynomial (sign, then half table)",
            StepKind::Smooth { shift: 0, .. } => "piecewise polynomial (ppa compare + selects)",
            StepKind::Smooth { .. } => "piecewise polynomial + fused truncation",
            StepKind::MaxPool { .. } => "max tournament (ppa compare)",
            StepKind::SumPool {
                multiplier: None, ..
            } => "local sum (free)",
            StepKind::SumPool { .. } => "local sum x public constant",
            StepKind::Trunc { .. } => "truncation (masked opening)",
            StepKind::Add { .. } => "local add (free)",
            StepKind::Mul => "beaver product",
            StepKind::Alias => "reshape (free)",
        }
    }
}

/// What the client gets at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputSpec {
    /// Value holding the result.
    pub value: usize,
    /// Its scale in fractional bits.
    pub scale: u32,
    /// Number of classes.
    pub classes: usize,
    /// Tables (exp, reciprocal) of the secure softmax, for the `probabilities` policy.
    pub softmax: Option<[usize; 2]>,
}

/// Encodes a linear layer's weights at their scale; on failure, the index and error.
pub(crate) fn encode_weights(
    fp: cryptmed_ring::FixedPoint,
    l: &LinearParams,
) -> Result<Vec<Elem>, (usize, cryptmed_ring::FixedError)> {
    l.weight
        .iter()
        .enumerate()
        .map(|(i, v)| fp.encode_at(*v, l.weight_scale).map_err(|e| (i, e)))
        .collect()
}

/// A provider linear layer's clear parameters (encoded by the engine).
#[derive(Clone)]
pub(crate) struct LinearParams {
    pub(crate) op: Bilinear,
    pub(crate) weight: Vec<f64>,
    pub(crate) bias: Option<Vec<f64>>,
    pub(crate) bias_scale: u32,
    pub(crate) weight_scale: u32,
    pub(crate) node: String,
}

/// Shapes and scales only, never the weights.
impl std::fmt::Debug for LinearParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearParams")
            .field("node", &self.node)
            .field("op", &self.op)
            .field("weights", &self.weight.len())
            .field("biases", &self.bias.as_ref().map(Vec::len))
            .field("weight_scale", &self.weight_scale)
            .field("bias_scale", &self.bias_scale)
            .finish_non_exhaustive()
    }
}

/// The plan plus the provider's clear parameters per linear layer.
#[derive(Clone, Serialize)]
pub struct Plan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Per-record length of every value.
    pub value_len: Vec<usize>,
    /// Scale of every value.
    pub value_scale: Vec<u32>,
    /// The result.
    pub output: OutputSpec,
    /// Fractional bits of the input.
    pub frac_bits: u32,
    /// Tables of the smooth steps (public; in the digest).
    pub tables: Vec<cryptmed_approx::Piecewise>,
    /// Half tables of the symmetric smooth steps (public; in the digest).
    pub half_tables: Vec<cryptmed_approx::Symmetric>,
    #[serde(skip)]
    pub(crate) linear: Vec<LinearParams>,
}

/// Public structure only: step names and protocols, value count, the largest
/// scale and the output; the linear layers by shape (never their weights).
impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{}: {}", s.name, s.kind.protocol()))
            .collect();
        f.debug_struct("Plan")
            .field("steps", &steps)
            .field("values", &self.value_len.len())
            .field("max_scale", &self.value_scale.iter().max())
            .field("output", &self.output)
            .field("frac_bits", &self.frac_bits)
            .field("tables", &self.tables.len())
            .field("linear", &self.linear)
            .finish()
    }
}

/// Refuses a plan whose largest scale leaves fewer than
/// [`MIN_HEADROOM_BITS`] bits below `2^62` (too many fractional bits for
/// this architecture), naming the step that reaches it.
pub(crate) fn check_headroom(plan: &Plan) -> Result<(), EngineError> {
    let limit = 62 - MIN_HEADROOM_BITS;
    let worst = plan
        .steps
        .iter()
        .map(|s| (plan.value_scale[s.output], s.name.as_str()))
        .max_by_key(|(scale, _)| *scale);
    match worst {
        Some((scale, name)) if scale > limit => Err(EngineError::Unsupported(format!(
            "{} fractional bits leave no headroom: step {name} works at scale {scale} \
             (values must stay below 2^62 with at least {MIN_HEADROOM_BITS} bits to spare, \
             so scales up to {limit}); use fewer fractional bits",
            plan.frac_bits
        ))),
        _ => Ok(()),
    }
}

/// Builds the plan for `net` with `f` fractional bits.
///
/// The one gate: every network is validated here before anything is built
/// or allocated from it ([`cryptmed_model::validate`]: value ids, shapes,
/// geometry, parameter lengths, size limits). A plan is the only way to a
/// [`crate::Model`], and every party's session takes a model, so no network
/// from a file or a peer reaches the protocols unchecked.
pub(crate) fn build(
    net: &Network,
    f: u32,
    precision: Precision,
    method: crate::SmoothMethod,
    reveal: crate::Reveal,
) -> Result<Plan, EngineError> {
    cryptmed_model::validate(net)?;
    let folded = fold_affine_into_linear(net);
    let net = &folded;
    let mut b = Builder {
        plan: Plan {
            steps: vec![],
            value_len: vec![net.input_len()],
            value_scale: vec![f],
            output: OutputSpec {
                value: 0,
                scale: f,
                classes: 0,
                softmax: None,
            },
            frac_bits: f,
            tables: vec![],
            half_tables: vec![],
            linear: vec![],
        },
        f,
        precision,
        method,
        map: vec![0; net.nodes.len() + 1],
        problems: vec![],
    };
    let consumers = consumers(net);
    let mut skip_next = false;
    let mut pending_affine: Option<(Vec<f64>, Vec<f64>, usize)> = None;
    for (i, node) in net.nodes.iter().enumerate() {
        let v = i + 1;
        if skip_next {
            skip_next = false;
            continue;
        }
        let len: usize = node.shape.iter().product();
        let input = node.inputs.first().copied().unwrap_or(0);
        let next_is_sole = |op_pred: &dyn Fn(&Op) -> bool| {
            consumers[v].len() == 1
                && consumers[v][0] == v + 1
                && net.nodes.get(i + 1).is_some_and(|n| op_pred(&n.op))
        };
        match &node.op {
            Op::Affine { scale, shift } if next_is_sole(&|o| matches!(o, Op::Dense { .. })) => {
                // Fold into the following dense layer (exact).
                pending_affine = Some((
                    scale.clone(),
                    shift.clone(),
                    node.shape.first().copied().unwrap_or(1),
                ));
                b.map[v] = b.map[input];
            }
            Op::Dense { weight, bias } => {
                let (rows, cols) = (weight.shape[0], weight.shape[1]);
                let (mut w, mut bias) = (weight.data.clone(), bias.clone());
                if let Some((sc, sh, ch)) = pending_affine.take() {
                    fold_affine(&mut w, &mut bias, rows, cols, &sc, &sh, ch);
                }
                let x = b.ready_for_linear(&node.name, b.map[input]);
                b.linear(
                    &node.name,
                    v,
                    x,
                    Bilinear::Dense { rows, cols },
                    w,
                    bias,
                    len,
                );
            }
            Op::Conv2d { geom, weight, bias } => {
                if geom.groups != 1 {
                    b.problems.push(format!(
                        "node {}: grouped convolution (groups = {}) is not supported",
                        node.name, geom.groups
                    ));
                    continue;
                }
                let x = b.ready_for_linear(&node.name, b.map[input]);
                b.linear(
                    &node.name,
                    v,
                    x,
                    Bilinear::Conv(*geom),
                    weight.data.clone(),
                    bias.clone(),
                    len,
                );
            }
            Op::Affine { scale, shift } => {
                // Element-wise scaling with private parameters: the diagonal bilinear protocol.
                let weights: Vec<f64> = (0..len).map(|i| param_at(scale, i, len)).collect();
                let biases: Vec<f64> = (0..len).map(|i| param_at(shift, i, len)).collect();
                let x = b.ready_for_linear(&node.name, b.map[input]);
                b.diagonal(&node.name, v, x, weights, biases, len);
            }
            Op::Act(Activation::Relu) => {
                let x = b.map[input];
                if next_is_sole(&|o| matches!(o, Op::MaxPool { .. })) {
                    // max-pool first (cheaper, commutes with ReLU), then ReLU with truncation.
                    let Op::MaxPool { geom } = &net.nodes[i + 1].op else {
                        unreachable!()
                    };
                    let plen = geom.out_len();
                    let pooled = b.push_value(plen, b.plan.value_scale[x]);
                    b.step(
                        &net.nodes[i + 1].name,
                        StepKind::MaxPool {
                            windows: geom.windows(),
                        },
                        vec![x],
                        pooled,
                        plen,
                    );
                    let shift = b.plan.value_scale[pooled] - f;
                    let out = b.push_value(plen, f);
                    b.step(
                        &node.name,
                        StepKind::Relu { shift },
                        vec![pooled],
                        out,
                        plen,
                    );
                    b.map[v + 1] = out;
                    skip_next = true;
                } else {
                    let shift = b.plan.value_scale[x] - f;
                    let out = b.push_value(len, f);
                    b.step(&node.name, StepKind::Relu { shift }, vec![x], out, len);
                    b.map[v] = out;
                }
            }
            Op::Act(act) if smooth_function(*act).is_some() => {
                // The input's extra bits (a linear layer's 2f) are truncated
                // inside the smooth step's own opening.
                let func = smooth_function(*act).unwrap_or(Function::Sigmoid);
                b.map[v] = b.smooth(&node.name, b.map[input], func, len);
            }
            Op::MaxPool { geom } => {
                let x = b.map[input];
                let out = b.push_value(len, b.plan.value_scale[x]);
                b.step(
                    &node.name,
                    StepKind::MaxPool {
                        windows: geom.windows(),
                    },
                    vec![x],
                    out,
                    len,
                );
                b.map[v] = out;
            }
            Op::AvgPool {
                geom,
                count_include_pad,
            } => {
                let windows = geom.windows();
                let full = geom.kernel[0] * geom.kernel[1];
                let divisors: Vec<usize> = windows
                    .iter()
                    .map(|w| if *count_include_pad { full } else { w.len() })
                    .collect();
                b.sum_pool(&node.name, v, b.map[input], windows, divisors, len);
            }
            Op::GlobalAvgPool => {
                let s = net.shape_of(input);
                let per: usize = s[1..].iter().product();
                let windows: Vec<Vec<usize>> = (0..s[0])
                    .map(|c| (c * per..(c + 1) * per).collect())
                    .collect();
                b.sum_pool(&node.name, v, b.map[input], windows, vec![per; s[0]], len);
            }
            Op::Reshape => {
                b.map[v] = b.map[input];
            }
            Op::Add => {
                let (x, y) = (b.map[node.inputs[0]], b.map[node.inputs[1]]);
                let (sx, sy) = (b.plan.value_scale[x], b.plan.value_scale[y]);
                let s = sx.max(sy);
                let out = b.push_value(len, s);
                b.step(
                    &node.name,
                    StepKind::Add {
                        align: [s - sx, s - sy],
                    },
                    vec![x, y],
                    out,
                    len,
                );
                b.map[v] = out;
            }
            Op::Mul => {
                let (x, y) = (
                    b.ready_for_linear(&node.name, b.map[node.inputs[0]]),
                    b.ready_for_linear(&node.name, b.map[node.inputs[1]]),
                );
                let s = b.plan.value_scale[x] + b.plan.value_scale[y];
                let out = b.push_value(len, s);
                b.step(&node.name, StepKind::Mul, vec![x, y], out, len);
                b.map[v] = out;
            }
            Op::Softmax if i + 1 == net.nodes.len() => {
                // The output policy decides (argmax, logits or secure softmax).
                b.map[v] = b.map[input];
            }
            other => {
                b.problems.push(format!(
                    "node {} ({}): not supported by the secure engine yet",
                    node.name,
                    other.name()
                ));
            }
        }
    }
    if !b.problems.is_empty() {
        return Err(EngineError::Unsupported(b.problems.join("; ")));
    }
    let value = b.map[net.nodes.len()];
    let classes = b.plan.value_len[value];
    let mut softmax = None;
    if reveal == crate::Reveal::Probabilities {
        if classes > 16 {
            return Err(EngineError::Unsupported(format!(
                "the `probabilities` policy supports up to 16 classes (the reciprocal's range); this model has {classes}"
            )));
        }
        let table = |func| {
            cryptmed_approx::table(func, precision, f)
                .map_err(|e| EngineError::Unsupported(e.to_string()))
        };
        b.plan.tables.push(table(Function::Exp)?);
        b.plan.tables.push(table(Function::Reciprocal)?);
        softmax = Some([b.plan.tables.len() - 2, b.plan.tables.len() - 1]);
    }
    b.plan.output = OutputSpec {
        value,
        scale: b.plan.value_scale[value],
        classes,
        softmax,
    };
    Ok(b.plan)
}

/// The table function of an activation (`None` for ReLU, which has its own
/// protocol; leaky ReLU is a two-piece linear table).
fn smooth_function(a: Activation) -> Option<Function> {
    Some(match a {
        Activation::Sigmoid => Function::Sigmoid,
        Activation::Tanh => Function::Tanh,
        Activation::Softplus => Function::Softplus,
        Activation::Elu { alpha } => Function::Elu { alpha },
        Activation::Selu => Function::Selu,
        Activation::Silu => Function::Silu,
        Activation::GeluErf => Function::GeluErf,
        Activation::GeluTanh => Function::GeluTanh,
        Activation::Erf => Function::Erf,
        Activation::Exp => Function::Exp,
        Activation::LeakyRelu { alpha } => Function::LeakyRelu { alpha },
        Activation::Relu => return None,
    })
}

/// Parameter of element `i` of `len` from a vector of 1 (broadcast), one per channel, or one per element.
pub(crate) fn param_at(v: &[f64], i: usize, len: usize) -> f64 {
    match v.len() {
        0 => 0.0,
        1 => v[0],
        n => v[(i / (len / n).max(1)).min(n - 1)],
    }
}

/// `consumers[v]`: the nodes (as value ids) that read value `v`.
fn consumers(net: &Network) -> Vec<Vec<ValueId>> {
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
fn fold_affine_into_linear(net: &Network) -> Network {
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
fn fold_affine(
    w: &mut [f64],
    bias: &mut Option<Vec<f64>>,
    rows: usize,
    cols: usize,
    scale: &[f64],
    shift: &[f64],
    ch: usize,
) {
    if w.len() != rows * cols {
        return; // a public network: no weights to fold, and the plan is the same
    }
    let _ = ch;
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

struct Builder {
    plan: Plan,
    f: u32,
    precision: Precision,
    method: crate::SmoothMethod,
    map: Vec<usize>,
    problems: Vec<String>,
}

impl Builder {
    fn push_value(&mut self, len: usize, scale: u32) -> usize {
        self.plan.value_len.push(len);
        self.plan.value_scale.push(scale);
        self.plan.value_len.len() - 1
    }

    fn step(&mut self, name: &str, kind: StepKind, inputs: Vec<usize>, output: usize, len: usize) {
        self.plan.steps.push(Step {
            name: name.to_string(),
            kind,
            inputs,
            output,
            len,
        });
    }

    /// Appends a smooth step on `x` (at any scale `>= f`: the step truncates
    /// it inside its own opening); returns its output value, at the table's
    /// output scale. With [`SmoothMethod::Symmetric`](crate::SmoothMethod),
    /// functions with a symmetry run on their half table.
    fn smooth(&mut self, name: &str, x: usize, func: Function, len: usize) -> usize {
        let shift = self.plan.value_scale[x] - self.f;
        let half = match self.method {
            crate::SmoothMethod::Symmetric => {
                cryptmed_approx::half_table(func, self.precision, self.f).transpose()
            }
            crate::SmoothMethod::Direct => None,
        };
        let made = match half {
            Some(h) => h.map(|h| {
                let scale = h.half.out_frac_bits;
                self.plan.half_tables.push(h);
                (self.plan.half_tables.len() - 1, scale, true)
            }),
            None => cryptmed_approx::table(func, self.precision, self.f).map(|t| {
                let scale = t.out_frac_bits;
                self.plan.tables.push(t);
                (self.plan.tables.len() - 1, scale, false)
            }),
        };
        match made {
            Ok((table, scale, symmetric)) => {
                let out = self.push_value(len, scale);
                self.step(
                    name,
                    StepKind::Smooth {
                        function: func.name().to_string(),
                        table,
                        shift,
                        symmetric,
                    },
                    vec![x],
                    out,
                    len,
                );
                out
            }
            Err(e) => {
                self.problems.push(format!("node {name}: {e}"));
                x
            }
        }
    }

    /// Truncates `x` to `f` if its scale would overflow a linear layer.
    fn ready_for_linear(&mut self, name: &str, x: usize) -> usize {
        let s = self.plan.value_scale[x];
        if s <= self.f + SLACK {
            return x;
        }
        let len = self.plan.value_len[x];
        let out = self.push_value(len, self.f);
        self.step(
            &format!("{name}.trunc"),
            StepKind::Trunc { shift: s - self.f },
            vec![x],
            out,
            len,
        );
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn linear(
        &mut self,
        name: &str,
        v: usize,
        x: usize,
        op: Bilinear,
        weight: Vec<f64>,
        bias: Option<Vec<f64>>,
        len: usize,
    ) {
        // The layer reading the raw record often carries folded standardisation
        // (tiny weights): it gets extra fractional bits. A public rule: it
        // depends on the architecture only.
        let weight_scale = if x == 0 {
            self.f + INPUT_LAYER_EXTRA_BITS
        } else {
            self.f
        };
        let scale = self.plan.value_scale[x] + weight_scale;
        let layer = self.plan.linear.len();
        self.plan.linear.push(LinearParams {
            op,
            weight,
            bias,
            bias_scale: scale,
            weight_scale,
            node: name.to_string(),
        });
        let out = self.push_value(len, scale);
        self.step(name, StepKind::Linear { op, layer }, vec![x], out, len);
        self.map[v] = out;
    }

    /// `y = w * x + b` element-wise with private `w`, `b` (an affine layer that cannot be folded).
    fn diagonal(
        &mut self,
        name: &str,
        v: usize,
        x: usize,
        weights: Vec<f64>,
        biases: Vec<f64>,
        len: usize,
    ) {
        self.linear(
            name,
            v,
            x,
            Bilinear::Diagonal { len },
            weights,
            Some(biases),
            len,
        );
    }

    fn sum_pool(
        &mut self,
        name: &str,
        v: usize,
        x: usize,
        windows: Vec<Vec<usize>>,
        divisors: Vec<usize>,
        len: usize,
    ) {
        let s = self.plan.value_scale[x];
        let uniform = divisors.iter().all(|d| *d == divisors[0]);
        let (scale, multiplier) = if uniform && divisors[0].is_power_of_two() {
            (s + divisors[0].trailing_zeros(), None)
        } else {
            let m = divisors
                .iter()
                .map(|d| ((1u64 << self.f) as f64 / *d as f64).round() as i64 as Elem)
                .collect();
            (s + self.f, Some(m))
        };
        let out = self.push_value(len, scale);
        self.step(
            name,
            StepKind::SumPool {
                windows,
                multiplier,
            },
            vec![x],
            out,
            len,
        );
        self.map[v] = out;
    }
}
