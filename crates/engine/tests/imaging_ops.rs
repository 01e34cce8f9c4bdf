//! The imaging operators in the plan and the secure engine: the max pool
//! that runs before its ReLU, concatenations whose parts are truncated once,
//! the error of a 7x7 global average, clip bounds beyond the values' range,
//! and the imaging fixtures from both exporters on random and adversarial
//! records (secure against the fixed-point reference, exact traffic).

mod common;

use common::check_inputs;
use cryptmed_engine::{EngineConfig, Model, Reveal, StepKind};
use cryptmed_model::{Activation, Network, Node, Op, Tensor, onnx, zoo};
use cryptmed_ring::FixedPoint;
use cryptmed_ring::kernels::{Conv2dGeom, Pool2dGeom};

/// A deterministic parameter vector in `[-0.5, 0.5]`.
fn param(n: usize, k: f64) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.37 + k).sin() * 0.5).collect()
}

/// A sequential-by-default network under construction: every node reads the
/// value of the node before it unless given its inputs.
struct Net {
    input: Vec<usize>,
    nodes: Vec<Node>,
}

impl Net {
    fn new(input: &[usize]) -> Self {
        Net {
            input: input.to_vec(),
            nodes: vec![],
        }
    }

    fn shape(&self, v: usize) -> Vec<usize> {
        match v {
            0 => self.input.clone(),
            _ => self.nodes[v - 1].shape.clone(),
        }
    }

    /// Appends `op` reading `inputs` with output `shape`; returns its value.
    fn push(&mut self, op: Op, inputs: Vec<usize>, shape: Vec<usize>) -> usize {
        let name = format!("{}{}", op.name(), self.nodes.len() + 1);
        self.nodes.push(Node {
            name,
            op,
            inputs,
            shape,
        });
        self.nodes.len()
    }

    /// A 3x3 convolution with padding 1 (same size) from value `x`.
    fn conv(&mut self, x: usize, out_ch: usize) -> usize {
        let s = self.shape(x);
        let geom = Conv2dGeom {
            in_ch: s[0],
            in_h: s[1],
            in_w: s[2],
            out_ch,
            kernel: [3, 3],
            stride: [1, 1],
            pads: [1; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let n = out_ch * s[0] * 9;
        let op = Op::Conv2d {
            geom,
            weight: Tensor::new(vec![out_ch, s[0], 3, 3], param(n, x as f64)).unwrap(),
            bias: Some(param(out_ch, 0.5)),
        };
        self.push(op, vec![x], vec![out_ch, s[1], s[2]])
    }

    fn unary(&mut self, op: Op, x: usize) -> usize {
        let shape = self.shape(x);
        self.push(op, vec![x], shape)
    }

    fn max_pool(&mut self, x: usize, k: usize, stride: usize, pad: usize) -> usize {
        let s = self.shape(x);
        let geom = Pool2dGeom {
            ch: s[0],
            in_h: s[1],
            in_w: s[2],
            kernel: [k, k],
            stride: [stride, stride],
            pads: [pad; 4],
        };
        self.push(
            Op::MaxPool { geom },
            vec![x],
            vec![s[0], geom.out_h(), geom.out_w()],
        )
    }

    fn concat(&mut self, xs: &[usize]) -> usize {
        let mut shape = self.shape(xs[0]);
        shape[0] = xs.iter().map(|x| self.shape(*x)[0]).sum();
        self.push(Op::Concat, xs.to_vec(), shape)
    }

    /// A batch norm (per-channel affine map, scales in `[0.5, 1.5]`).
    fn affine(&mut self, x: usize) -> usize {
        let ch = self.shape(x)[0];
        let scale = param(ch, 1.0).iter().map(|v| v + 1.0).collect();
        self.unary(
            Op::Affine {
                scale,
                shift: param(ch, 2.0),
            },
            x,
        )
    }

    /// Flatten, then a dense layer to `classes` outputs.
    fn head(&mut self, x: usize, classes: usize) -> usize {
        let len: usize = self.shape(x).iter().product();
        let flat = self.push(Op::Reshape, vec![x], vec![len]);
        let op = Op::Dense {
            weight: Tensor::new(vec![classes, len], param(classes * len, 0.3)).unwrap(),
            bias: Some(param(classes, 0.7)),
        };
        self.push(op, vec![flat], vec![classes])
    }

    fn network(self, name: &str) -> Network {
        Network {
            name: name.into(),
            input_shape: self.input,
            nodes: self.nodes,
            class_names: None,
            schema: None,
            preprocessing: None,
        }
    }
}

/// Random records, then the adversarial ones: zeros, every column at its
/// limit (both signs), alternating signs, and half the limit, where a
/// column's limit is the smaller of the model's input limit and `cap`. The
/// input limits keep the first layers in range; deeper ones are not
/// bounded by them, so a deep network is given a `cap`.
fn records(net: &Network, model: &Model, cap: f64) -> Vec<Vec<f64>> {
    let len = net.input_len();
    let limit = |j: usize| model.input_limits().map_or(1.0, |l| l[j]).min(cap);
    let mut all = zoo::random_inputs(net, 3, 11);
    all.push(vec![0.0; len]);
    for sign in [1.0, -1.0] {
        all.push((0..len).map(|j| sign * limit(j)).collect());
        all.push((0..len).map(|j| sign * limit(j) / 2.0).collect());
    }
    all.push(
        (0..len)
            .map(|j| if j % 2 == 0 { limit(j) } else { -limit(j) })
            .collect(),
    );
    all
}

fn compile(net: &Network, reveal: Reveal) -> Model {
    let config = EngineConfig {
        reveal,
        ..EngineConfig::default()
    };
    Model::compile(net.clone(), config).unwrap()
}

/// Secure against the fixed-point reference ([`check_inputs`]), and that
/// reference against f64 (within `1e-3` of the largest logit, or of 1), on
/// random and adversarial records (see [`records`]).
fn check_secure(net: &Network, cap: f64) {
    let model = compile(net, Reveal::Logits);
    let inputs = records(net, &model, cap);
    for (i, x) in inputs.iter().enumerate() {
        let fixed = model.reference_fixed(x).unwrap();
        // Logits are the values before a final sigmoid or softmax, and a
        // binary head's logit `z` is revealed as `[0, z]`.
        let all = cryptmed_model::reference::evaluate_all(net, x);
        let squashed = matches!(
            net.nodes.last().map(|n| &n.op),
            Some(Op::Softmax | Op::Act(Activation::Sigmoid))
        );
        let mut exact = all[all.len() - 1 - usize::from(squashed)].clone();
        if exact.len() == 1 {
            exact.insert(0, 0.0);
        }
        let scale = exact.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let err = common::max_diff(&fixed, &exact);
        assert!(
            err <= 1e-3 * scale,
            "{}: record {i}: fixed point {fixed:?} vs f64 {exact:?}",
            net.name
        );
    }
    check_inputs(net, Reveal::Logits, &inputs, 3, FixedPoint::default());
}

/// The protocol names of a model's plan, in order, with each step's length.
fn steps(model: &Model) -> Vec<(&'static str, usize)> {
    model
        .plan()
        .steps
        .iter()
        .map(|s| {
            let kind = match s.kind {
                StepKind::Linear { .. } => "linear",
                StepKind::Relu { .. } => "relu",
                StepKind::MaxPool { .. } => "maxpool",
                StepKind::Trunc { .. } => "trunc",
                StepKind::Concat { .. } => "concat",
                StepKind::Add { .. } => "add",
                StepKind::SumPool { .. } => "sumpool",
                StepKind::Clip { .. } => "clip",
                _ => "other",
            };
            (kind, s.len)
        })
        .collect()
}

/// ResNet's stem (Conv, ReLU, max pool 3x3/2 with padding 1): the pool runs
/// first (separably, rows then columns) and the ReLU on the pooled
/// elements; a ReLU that something else reads too runs first, on all.
#[test]
fn relu_then_max_pool_runs_the_pool_first() {
    let mut n = Net::new(&[2, 9, 9]);
    let c = n.conv(0, 3);
    let r = n.unary(Op::Act(Activation::Relu), c);
    let p = n.max_pool(r, 3, 2, 1);
    n.head(p, 4);
    let stem = n.network("stem");
    let model = compile(&stem, Reveal::Logits);
    assert_eq!(
        steps(&model),
        [
            ("linear", 243),
            ("maxpool", 135),
            ("maxpool", 75),
            ("relu", 75),
            ("linear", 4)
        ]
    );
    check_secure(&stem, 64.0);

    let mut n = Net::new(&[2, 9, 9]);
    let c = n.conv(0, 3);
    let r = n.unary(Op::Act(Activation::Relu), c);
    let p = n.max_pool(r, 3, 1, 1);
    let sum = n.push(Op::Add, vec![r, p], vec![3, 9, 9]);
    n.head(sum, 4);
    let shared = n.network("relu read twice");
    let model = compile(&shared, Reveal::Logits);
    let relu = steps(&model).iter().position(|s| s.0 == "relu").unwrap();
    let pool = steps(&model).iter().position(|s| s.0 == "maxpool").unwrap();
    assert!(relu < pool, "{:?}", steps(&model));
    assert_eq!(steps(&model)[relu], ("relu", 243));
    check_secure(&shared, 64.0);
}

/// DenseNet's pattern (every layer reads the concatenation of all earlier
/// feature maps through a batch norm): each feature map is truncated once,
/// however many concatenations it enters, and no unread step is left.
#[test]
fn concatenated_feature_maps_are_truncated_once() {
    let mut n = Net::new(&[2, 6, 6]);
    let mut features = vec![0];
    for _ in 0..3 {
        let cat = n.concat(&features);
        let bn = n.affine(cat);
        let r = n.unary(Op::Act(Activation::Relu), bn);
        features.push(n.conv(r, 2));
    }
    let cat = n.concat(&features);
    let gap = n.push(Op::GlobalAvgPool, vec![cat], vec![8, 1, 1]);
    n.head(gap, 3);
    let net = n.network("dense");
    let model = compile(&net, Reveal::Logits);
    let plan = model.plan();
    // Three new feature maps of 72 values: one truncation each (truncating
    // the concatenations instead: 144 + 216 + 288 values), then the 8
    // averages at the multiplier's scale before the head.
    let truncs: Vec<usize> = steps(&model)
        .iter()
        .filter(|s| s.0 == "trunc")
        .map(|s| s.1)
        .collect();
    assert_eq!(truncs, [72, 72, 72, 8], "{:?}", steps(&model));
    for (i, s) in plan.steps.iter().enumerate() {
        let read = plan.steps[i + 1..]
            .iter()
            .any(|t| t.inputs.contains(&s.output));
        assert!(
            read || s.output == plan.output.value,
            "step {} ({}) is never read",
            s.name,
            s.kind.protocol()
        );
    }
    check_secure(&net, 64.0);
}

/// A global average over 7x7 (not a power of two) multiplies the window sum
/// by the public `round(2^(f+8) / 49)`: its relative error is at most
/// `49 / 2^(f+9)` (1.5e-6 at 16 bits), as the plan's documentation states.
/// Records of exactly representable values, so that the multiplier is the
/// only error; secure and fixed-point reference agree exactly (no
/// truncation).
#[test]
fn global_average_over_49_is_within_the_stated_bound() {
    let mut n = Net::new(&[3, 7, 7]);
    let gap = n.push(Op::GlobalAvgPool, vec![0], vec![3, 1, 1]);
    n.push(Op::Reshape, vec![gap], vec![3]);
    let net = n.network("gap7");
    for f in [12, 16, 20] {
        let fixed = FixedPoint::new(f).unwrap();
        let ulp = fixed.ulp();
        let model = Model::compile(
            net.clone(),
            EngineConfig {
                reveal: Reveal::Logits,
                fixed,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let big = model.input_limits().map_or(1024.0, |l| l[0]).min(1024.0);
        let mut inputs: Vec<Vec<f64>> = vec![
            vec![big - ulp; 147],
            vec![-big; 147],
            (0..147).map(|i| ((i * 7919) % 1000) as f64 * ulp).collect(),
            (0..147).map(|i| (i as f64 - 70.0) * 0.37).collect(),
        ];
        for x in &mut inputs {
            x.iter_mut().for_each(|v| *v = (*v / ulp).round() * ulp);
        }
        let run = cryptmed_engine::local::run_local(&model, &model, &inputs, 2).unwrap();
        let bound = 49.0 / 2f64.powi(f as i32 + 9);
        for (x, p) in inputs.iter().zip(&run.predictions) {
            let got = p.logits.as_ref().unwrap();
            assert_eq!(got, &model.reference_fixed(x).unwrap(), "f = {f}");
            for (c, g) in got.iter().enumerate() {
                let mean = x[c * 49..(c + 1) * 49].iter().sum::<f64>() / 49.0;
                let err = (g - mean).abs();
                assert!(
                    err <= mean.abs() * bound * (1.0 + 1e-9) + 1e-12,
                    "f = {f}: mean {mean}, got {g}: relative error {} above {bound}",
                    err / mean.abs()
                );
            }
        }
    }
}

/// A dense layer then a clip with the given bounds.
fn clipped(min: Option<f64>, max: Option<f64>) -> Network {
    let mut n = Net::new(&[4]);
    let d = n.push(
        Op::Dense {
            weight: Tensor::new(vec![5, 4], param(20, 0.1).iter().map(|w| w * 8.0).collect())
                .unwrap(),
            bias: Some(param(5, 0.2)),
        },
        vec![0],
        vec![5],
    );
    let c = n.unary(Op::Act(Activation::Clip { min, max }), d);
    n.head(c, 3);
    n.network("clipped")
}

/// Clip bounds beyond every value the input's scale can hold (`2^62`
/// encoded, about 2^22 at the 40 bits of a first layer's output): one that
/// could never bind is dropped, one that always would is refused by name.
#[test]
fn clip_bounds_beyond_the_range_are_dropped_or_refused() {
    let model = compile(&clipped(Some(-1e30), Some(f64::MAX)), Reveal::Logits);
    let kinds: Vec<_> = model
        .plan()
        .steps
        .iter()
        .filter_map(|s| match s.kind {
            StepKind::Clip { min, max, .. } => Some((min, max)),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, [(None, None)]);
    check_secure(&clipped(Some(-1e30), Some(f64::MAX)), 64.0);
    check_secure(&clipped(Some(-0.25), Some(1e300)), 64.0);
    for (min, max) in [(Some(1e30), None), (None, Some(-1e30))] {
        let e = Model::compile(clipped(min, max), EngineConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node clip2: clip bound") && e.contains("beyond every value"),
            "{e}"
        );
    }
}

/// The imaging fixtures (grouped and depthwise convolutions, channel
/// concatenation, clips, Keras-same pads with padded pools and a 7x7 global
/// average, binary heads) from both exporters, on random records and on
/// zeros and every column at its limit (both signs, alternating).
#[test]
fn imaging_fixtures_on_random_and_adversarial_records() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures");
    for base in [
        "grouped_depthwise",
        "dense_concat",
        "clip_variants",
        "same_pad_pools",
        "sigmoid_head",
        "logit_head",
    ] {
        for exporter in ["torchscript17", "dynamo18"] {
            let net = onnx::load(&dir.join(format!("{base}_{exporter}.onnx"))).unwrap();
            check_secure(&net, f64::INFINITY);
        }
    }
}
