//! Lowering: each network node becomes the plan's steps, one small method
//! per operator, in a [`Builder`] that tracks every value's scale.

use cryptmed_approx::{Function, Precision};
use cryptmed_model::{Activation, Network, Node, Op, Tensor};
use cryptmed_protocols::linear::Bilinear;
use cryptmed_ring::kernels::Pool2dGeom;
use cryptmed_ring::{Elem, FixedPoint};

use super::fold::{affine_into_dense, consumers, param_at};
use super::{LinearParams, OutputSpec, Plan, Step, StepKind};
use crate::{EngineError, Reveal, SmoothMethod};

/// Extra fractional bits of the weights of the layer that reads the record.
const INPUT_LAYER_EXTRA_BITS: u32 = 8;

/// Extra fractional bits of every other layer's weights. Weight quantisation,
/// not the activations' truncation, dominates the error of deep networks at
/// 16 bits (a batch norm folded into a convolution shrinks many weights):
/// on the pneumonia Xception, 4 more bits take the fixed-point logits from
/// 1e-3 to 1.3e-4 of the f64 ones (8 more gain nothing). They cost no bytes:
/// the ReLU or smooth step after the layer truncates them in its own opening.
const WEIGHT_EXTRA_BITS: u32 = 4;

/// Largest input scale a linear layer accepts before a truncation is inserted: `f + SLACK`.
const SLACK: u32 = 8;

/// Extra fractional bits of an average pool's public multiplier `2^(f+E)/count`.
const POOL_MULTIPLIER_EXTRA_BITS: u32 = 8;

/// Lowers one network into a [`Plan`].
pub(super) struct Builder<'a> {
    net: &'a Network,
    plan: Plan,
    f: u32,
    precision: Precision,
    method: SmoothMethod,
    /// The plan value of each network value.
    map: Vec<usize>,
    /// Who reads each network value.
    consumers: Vec<Vec<usize>>,
    /// A batch norm waiting to fold into the dense layer after it: scale, shift.
    pending_affine: Option<(Vec<f64>, Vec<f64>)>,
    /// The next node was already lowered (a max pool run before its ReLU).
    skip_next: bool,
    /// Plan values already truncated for a linear layer, and their truncations.
    truncated: std::collections::HashMap<usize, usize>,
    problems: Vec<String>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(
        net: &'a Network,
        f: u32,
        precision: Precision,
        method: SmoothMethod,
    ) -> Self {
        Self {
            net,
            plan: Plan {
                steps: vec![],
                value_len: vec![net.input_len()],
                value_scale: vec![f],
                output: OutputSpec {
                    value: 0,
                    scale: f,
                    classes: 0,
                    softmax: None,
                    binary: false,
                },
                frac_bits: f,
                input_exponents: vec![],
                tables: vec![],
                half_tables: vec![],
                linear: vec![],
            },
            f,
            precision,
            method,
            map: vec![0; net.nodes.len() + 1],
            consumers: consumers(net),
            pending_affine: None,
            skip_next: false,
            truncated: Default::default(),
            problems: vec![],
        }
    }

    /// Lowers every node in order.
    pub(super) fn lower_nodes(&mut self) {
        for i in 0..self.net.nodes.len() {
            if std::mem::take(&mut self.skip_next) {
                continue;
            }
            self.lower(i);
        }
    }

    fn lower(&mut self, i: usize) {
        let net = self.net;
        let node = &net.nodes[i];
        let (v, x) = (i + 1, self.map[node.inputs[0]]);
        let len: usize = node.shape.iter().product();
        let last = i + 1 == net.nodes.len();
        match &node.op {
            Op::Affine { scale, shift }
                if self.next_is_sole(i, |o| matches!(o, Op::Dense { .. })) =>
            {
                // Folded into the following dense layer (exact).
                self.pending_affine = Some((scale.clone(), shift.clone()));
                self.map[v] = x;
            }
            Op::Affine { scale, shift } => self.affine(v, &node.name, x, scale, shift, len),
            Op::Dense { weight, bias } => self.dense(v, &node.name, x, weight, bias.clone()),
            Op::Conv2d { geom, weight, bias } => {
                let x = self.ready_for_linear(&node.name, x);
                let (w, b) = (weight.data.clone(), bias.clone());
                self.linear(v, &node.name, x, Bilinear::Conv(*geom), w, b);
            }
            Op::Act(Activation::Relu) => self.relu(i, x),
            Op::Act(Activation::Clip { min, max }) => {
                self.map[v] = self.clip(&node.name, x, *min, *max, len);
            }
            // A binary head: the output step decides `p >= 0.5` from the logit.
            Op::Act(Activation::Sigmoid) if last && len == 1 => self.map[v] = x,
            Op::Act(act) => match smooth_function(*act) {
                // The input's extra bits (a linear layer's 2f) are truncated
                // inside the smooth step's own opening.
                Some(func) => self.map[v] = self.smooth(&node.name, x, func, len),
                None => self.unsupported(node),
            },
            Op::MaxPool { geom } => self.map[v] = self.max_pool(&node.name, x, geom),
            Op::AvgPool {
                geom,
                count_include_pad,
            } => self.avg_pool(v, &node.name, x, geom, *count_include_pad),
            Op::GlobalAvgPool => self.global_avg_pool(v, &node.name, x, node.inputs[0]),
            Op::Reshape => self.map[v] = x,
            Op::Add | Op::Concat => self.map[v] = self.join(node, len),
            Op::Mul => {
                let x = self.ready_for_linear(&node.name, x);
                let y = self.ready_for_linear(&node.name, self.map[node.inputs[1]]);
                let s = self.plan.value_scale[x] + self.plan.value_scale[y];
                self.map[v] = self.step(&node.name, StepKind::Mul, vec![x, y], len, s);
            }
            // The output policy decides (argmax, logits or secure softmax).
            Op::Softmax if last => self.map[v] = x,
            Op::Softmax => self.unsupported(node),
        }
    }

    /// A per-channel affine map with private parameters that no dense or
    /// convolution layer absorbs: the diagonal bilinear protocol.
    fn affine(&mut self, v: usize, name: &str, x: usize, scale: &[f64], shift: &[f64], len: usize) {
        let weights = (0..len).map(|k| param_at(scale, k, len)).collect();
        let biases = (0..len).map(|k| param_at(shift, k, len)).collect();
        let x = self.ready_for_linear(name, x);
        let op = Bilinear::Diagonal { len };
        self.linear(v, name, x, op, weights, Some(biases));
    }

    /// `min(max(x, min), max)`, truncating `x` to `f` inside its own opening.
    /// A bound beyond every value the input's scale represents (`2^62`
    /// encoded) is dropped when it can never bind (a lower bound below the
    /// range, an upper one above it) and refused when it always would.
    fn clip(
        &mut self,
        name: &str,
        x: usize,
        min: Option<f64>,
        max: Option<f64>,
        len: usize,
    ) -> usize {
        let scale = self.plan.value_scale[x];
        let mut in_range = |bound: Option<f64>, never_binds: fn(f64) -> bool| {
            let b = bound?;
            if FixedPoint::default().encode_at(b, scale).is_ok() {
                Some(b)
            } else if never_binds(b) {
                None
            } else {
                self.problems.push(format!(
                    "node {name}: clip bound {b} is beyond every value representable at \
                     {scale} fractional bits (|bound| < 2^{})",
                    62 - scale as i32
                ));
                None
            }
        };
        let min = in_range(min, |b| b < 0.0);
        let max = in_range(max, |b| b > 0.0);
        let shift = scale - self.f;
        let kind = StepKind::Clip { shift, min, max };
        self.step(name, kind, vec![x], len, self.f)
    }

    /// Average pooling: each output position's divisor is the full window,
    /// or only its cells inside the input when the padding does not count.
    fn avg_pool(&mut self, v: usize, name: &str, x: usize, geom: &Pool2dGeom, count_pad: bool) {
        let full = geom.kernel[0] * geom.kernel[1];
        let divisors: Vec<usize> = geom
            .windows()
            .iter()
            .take(geom.out_h() * geom.out_w())
            .map(|w| if count_pad { full } else { w.len() })
            .collect();
        self.sum_pool(v, name, x, *geom, &divisors);
    }

    /// The mean of every channel: a pool whose window is the whole image.
    fn global_avg_pool(&mut self, v: usize, name: &str, x: usize, input: usize) {
        let s = self.net.shape_of(input);
        let geom = Pool2dGeom {
            ch: s[0],
            in_h: s[1],
            in_w: s[2],
            kernel: [s[1], s[2]],
            stride: [1, 1],
            pads: [0; 4],
        };
        self.sum_pool(v, name, x, geom, &[s[1] * s[2]]);
    }

    /// A residual `Add` or a channel `Concat`: free, after the exact left
    /// shifts that bring every input to the largest scale.
    fn join(&mut self, node: &Node, len: usize) -> usize {
        let xs: Vec<usize> = node.inputs.iter().map(|u| self.map[*u]).collect();
        let (s, align) = self.aligned(&xs);
        let kind = match node.op {
            Op::Add => StepKind::Add {
                align: [align[0], align[1]],
            },
            _ => StepKind::Concat { align },
        };
        self.step(&node.name, kind, xs, len, s)
    }

    fn unsupported(&mut self, node: &Node) {
        self.problems.push(format!(
            "node {} ({}): not supported by the secure engine yet",
            node.name,
            node.op.name()
        ));
    }

    /// True when node `i + 1` exists, matches `pred` and is the only reader of node `i`.
    fn next_is_sole(&self, i: usize, pred: impl Fn(&Op) -> bool) -> bool {
        let v = i + 1;
        self.consumers[v].len() == 1
            && self.consumers[v][0] == v + 1
            && self.net.nodes.get(i + 1).is_some_and(|n| pred(&n.op))
    }

    /// A new value of `len` elements per record at `scale`.
    fn push_value(&mut self, len: usize, scale: u32) -> usize {
        self.plan.value_len.push(len);
        self.plan.value_scale.push(scale);
        self.plan.value_len.len() - 1
    }

    /// Appends a step writing a new value (`len` elements at `scale`); returns that value.
    fn step(
        &mut self,
        name: &str,
        kind: StepKind,
        inputs: Vec<usize>,
        len: usize,
        scale: u32,
    ) -> usize {
        let output = self.push_value(len, scale);
        self.plan.steps.push(Step {
            name: name.to_string(),
            kind,
            inputs,
            output,
            len,
        });
        output
    }

    /// The common scale of `xs` (their largest) and each one's left shift to reach it.
    fn aligned(&self, xs: &[usize]) -> (u32, Vec<u32>) {
        let s = xs
            .iter()
            .map(|x| self.plan.value_scale[*x])
            .max()
            .unwrap_or(self.f);
        (
            s,
            xs.iter().map(|x| s - self.plan.value_scale[*x]).collect(),
        )
    }

    /// A dense layer, with a batch norm just before it folded in.
    fn dense(&mut self, v: usize, name: &str, x: usize, weight: &Tensor, bias: Option<Vec<f64>>) {
        let (rows, cols) = (weight.shape[0], weight.shape[1]);
        let (mut w, mut bias) = (weight.data.clone(), bias);
        if let Some((scale, shift)) = self.pending_affine.take() {
            affine_into_dense(&mut w, &mut bias, rows, cols, &scale, &shift);
        }
        let x = self.ready_for_linear(name, x);
        self.linear(v, name, x, Bilinear::Dense { rows, cols }, w, bias);
    }

    /// ReLU, truncating its input to `f` in the same opening; a max pool
    /// that is the ReLU's only reader runs first (they commute, and the pool
    /// leaves fewer elements for the ReLU).
    fn relu(&mut self, i: usize, x: usize) {
        let node = &self.net.nodes[i];
        let mut input = x;
        // The network value the ReLU's output stands for (the pool's, when it runs first).
        let mut writes = i + 1;
        if self.next_is_sole(i, |o| matches!(o, Op::MaxPool { .. })) {
            let pool = &self.net.nodes[i + 1];
            let Op::MaxPool { geom } = &pool.op else {
                return;
            };
            input = self.max_pool(&pool.name, x, geom);
            writes = i + 2;
            self.skip_next = true;
        }
        let len = self.plan.value_len[input];
        let shift = self.plan.value_scale[input] - self.f;
        self.map[writes] = self.step(
            &node.name,
            StepKind::Relu { shift },
            vec![input],
            len,
            self.f,
        );
    }

    /// Max pooling of `x`; a 2-D window runs as a row pass then a column
    /// pass (padded cells never win, so the padding splits too) when that
    /// takes fewer comparisons in no more rounds: ResNet's 3x3/2 stem pool
    /// needs 6 comparisons per output instead of 8, in the same 4 levels.
    fn max_pool(&mut self, name: &str, x: usize, geom: &Pool2dGeom) -> usize {
        let scale = self.plan.value_scale[x];
        let direct = |g: &Pool2dGeom| {
            let area = g.kernel[0] * g.kernel[1];
            (g.out_len() * area.saturating_sub(1), ceil_log2(area))
        };
        let rows = Pool2dGeom {
            kernel: [1, geom.kernel[1]],
            stride: [1, geom.stride[1]],
            pads: [0, geom.pads[1], 0, geom.pads[3]],
            ..*geom
        };
        let cols = Pool2dGeom {
            in_w: rows.out_w(),
            kernel: [geom.kernel[0], 1],
            stride: [geom.stride[0], 1],
            pads: [geom.pads[0], 0, geom.pads[2], 0],
            ..*geom
        };
        let (one, one_levels) = direct(geom);
        let (a, a_levels) = direct(&rows);
        let (b, b_levels) = direct(&cols);
        if a + b < one && a_levels + b_levels <= one_levels {
            let r = self.step(
                &format!("{name}.rows"),
                StepKind::MaxPool { geom: rows },
                vec![x],
                rows.out_len(),
                scale,
            );
            self.step(
                name,
                StepKind::MaxPool { geom: cols },
                vec![r],
                cols.out_len(),
                scale,
            )
        } else {
            self.step(
                name,
                StepKind::MaxPool { geom: *geom },
                vec![x],
                geom.out_len(),
                scale,
            )
        }
    }

    /// Appends a smooth step on `x` (at any scale `>= f`: the step truncates
    /// it inside its own opening); returns its output value, at the table's
    /// output scale. With [`SmoothMethod::Symmetric`], functions with a
    /// symmetry run on their half table.
    fn smooth(&mut self, name: &str, x: usize, func: Function, len: usize) -> usize {
        let shift = self.plan.value_scale[x] - self.f;
        let half = match self.method {
            SmoothMethod::Symmetric => {
                cryptmed_approx::half_table(func, self.precision, self.f).transpose()
            }
            SmoothMethod::Direct => None,
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
                let kind = StepKind::Smooth {
                    function: func.name().to_string(),
                    table,
                    shift,
                    symmetric,
                };
                self.step(name, kind, vec![x], len, scale)
            }
            Err(e) => {
                self.problems.push(format!("node {name}: {e}"));
                x
            }
        }
    }

    /// `x` at a scale a linear layer accepts (at most `f + SLACK`): `x`
    /// itself, or its truncation to `f`, made once per value and shared by
    /// every later reader. A concatenation is rebuilt from its parts, each
    /// truncated (once) only where needed, so that a feature map that enters
    /// many concatenations (DenseNet concatenates every earlier feature map
    /// before each layer) is truncated once, not in every concatenation
    /// (exact: truncation is element-wise, and `(a << s) >> k = a >> (k -
    /// s)` for the aligning shift `s <= k`). The concatenation it replaces is
    /// left unread and pruned ([`Builder::finish`]).
    fn ready_for_linear(&mut self, name: &str, x: usize) -> usize {
        let s = self.plan.value_scale[x];
        if s <= self.f + SLACK {
            return x;
        }
        if let Some(t) = self.truncated.get(&x) {
            return *t;
        }
        let len = self.plan.value_len[x];
        let concat = self
            .plan
            .steps
            .iter()
            .rev()
            .find(|st| st.output == x)
            .filter(|st| matches!(st.kind, StepKind::Concat { .. }))
            .map(|st| (st.name.clone(), st.inputs.clone()));
        let t = match concat {
            Some((concat_name, parts)) => {
                let parts: Vec<usize> = parts
                    .iter()
                    .map(|p| self.ready_for_linear(name, *p))
                    .collect();
                let (scale, align) = self.aligned(&parts);
                let kind = StepKind::Concat { align };
                self.step(&concat_name, kind, parts, len, scale)
            }
            None => {
                let kind = StepKind::Trunc { shift: s - self.f };
                self.step(&format!("{name}.trunc"), kind, vec![x], len, self.f)
            }
        };
        self.truncated.insert(x, t);
        t
    }

    /// A bilinear layer with the provider's private weights, writing network value `v`.
    fn linear(
        &mut self,
        v: usize,
        name: &str,
        x: usize,
        op: Bilinear,
        weight: Vec<f64>,
        bias: Option<Vec<f64>>,
    ) {
        // The layer reading the raw record often carries folded standardisation
        // (tiny weights): it gets extra fractional bits. A public rule: it
        // depends on the architecture only.
        let weight_scale = if x == 0 {
            self.f + INPUT_LAYER_EXTRA_BITS
        } else {
            self.f + WEIGHT_EXTRA_BITS
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
        let kind = StepKind::Linear { op, layer };
        self.map[v] = self.step(name, kind, vec![x], op.out_len(), scale);
    }

    /// Average pooling: window sums, free; a non-power-of-two divisor `d`
    /// becomes a public multiplier `round(2^(f+E) / d)` at scale `+f+E`.
    /// `divisors` has one entry per output position of a channel, or one for all.
    fn sum_pool(&mut self, v: usize, name: &str, x: usize, geom: Pool2dGeom, divisors: &[usize]) {
        let len = geom.out_len();
        let uniform = divisors.iter().all(|d| *d == divisors[0]);
        let free = uniform && divisors[0].is_power_of_two();
        // A multiplier is a linear map: its input must leave it room.
        let x = if free {
            x
        } else {
            self.ready_for_linear(name, x)
        };
        let s = self.plan.value_scale[x];
        let (scale, multiplier) = if free {
            (s + divisors[0].trailing_zeros(), None)
        } else {
            let bits = self.f + POOL_MULTIPLIER_EXTRA_BITS;
            let positions = geom.out_h() * geom.out_w();
            let m = (0..positions)
                .map(|i| {
                    let d = divisors[i.min(divisors.len() - 1)];
                    (2f64.powi(bits as i32) / d as f64).round() as i64 as Elem
                })
                .collect();
            (s + bits, Some(m))
        };
        let kind = StepKind::SumPool { geom, multiplier };
        self.map[v] = self.step(name, kind, vec![x], len, scale);
    }

    /// The output step's specification, and the softmax tables the
    /// `probabilities` policy needs.
    pub(super) fn finish(mut self, reveal: Reveal) -> Result<Plan, EngineError> {
        if !self.problems.is_empty() {
            return Err(EngineError::Unsupported(self.problems.join("; ")));
        }
        let value = self.map[self.net.nodes.len()];
        prune_unread_local_steps(&mut self.plan.steps, value);
        let len = self.plan.value_len[value];
        let binary = len == 1;
        let classes = if binary { 2 } else { len };
        let mut softmax = None;
        if reveal == Reveal::Probabilities {
            if classes > 16 {
                return Err(EngineError::Unsupported(format!(
                    "the `probabilities` policy supports up to 16 classes (the reciprocal's range); this model has {classes}"
                )));
            }
            let (precision, f) = (self.precision, self.f);
            let table = |func| {
                cryptmed_approx::table(func, precision, f)
                    .map_err(|e| EngineError::Unsupported(e.to_string()))
            };
            self.plan.tables.push(table(Function::Exp)?);
            self.plan.tables.push(table(Function::Reciprocal)?);
            softmax = Some([self.plan.tables.len() - 2, self.plan.tables.len() - 1]);
        }
        self.plan.output = OutputSpec {
            value,
            scale: self.plan.value_scale[value],
            classes,
            softmax,
            binary,
        };
        Ok(self.plan)
    }
}

/// Drops the free steps whose output nothing reads (a concatenation that
/// [`Builder::ready_for_linear`] rebuilt from truncated parts), last first
/// so that a chain of them goes too: a session keeps every value until its
/// last reader, so an unread one would stay in memory to the end.
fn prune_unread_local_steps(steps: &mut Vec<Step>, output: usize) {
    let mut read = vec![
        false;
        steps
            .iter()
            .map(|s| s.output + 1)
            .max()
            .unwrap_or(0)
            .max(output + 1)
    ];
    read[output] = true;
    let mut keep = vec![true; steps.len()];
    for (i, s) in steps.iter().enumerate().rev() {
        keep[i] = read[s.output] || !super::local::is_local(&s.kind);
        if keep[i] {
            s.inputs.iter().for_each(|v| read[*v] = true);
        }
    }
    let mut k = keep.into_iter();
    steps.retain(|_| k.next().unwrap_or(true));
}

/// `ceil(log2(x))` (0 for `x <= 1`): a tournament's levels over `x` candidates.
fn ceil_log2(x: usize) -> usize {
    if x <= 1 {
        0
    } else {
        (usize::BITS - (x - 1).leading_zeros()) as usize
    }
}

/// The table function of an activation (`None` for ReLU and Clip, which
/// have their own protocols; leaky ReLU is a two-piece linear table).
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
        Activation::Relu | Activation::Clip { .. } => return None,
    })
}
