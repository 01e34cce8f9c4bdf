//! Per-column input limits (`Model::input_limits`): checked here against an
//! independent computation of the first layer's worst case, not against the
//! engine's own analysis. Safe (every record inside the limits keeps the
//! first layer's outputs below `2^62` at their scale, and runs exactly at the
//! worst corner), tight (doubling every limit breaks that), per column
//! (columns in very different units each get a range in their own units),
//! and enforced (one step past a column's limit is refused, naming the record
//! and the column).

use cryptmed_engine::local::run_local;
use cryptmed_engine::{EngineConfig, EngineError, Model, Reveal, StepKind};
use cryptmed_model::{Activation, Network, Op, Tensor, reference};

mod common;
use common::{Rng, node};
use cryptmed_ring::kernels::Conv2dGeom;

/// `d`-16-2 MLP whose first layer has, per column, weights of magnitude
/// `scales[j]` (as folded standardisation gives: tiny for a count in the
/// thousands, large for a quantity that varies in its third decimal), and a
/// bias large enough to matter; with `relu_first` a ReLU reads the record
/// before it.
fn mlp(scales: &[f64], seed: u64, relu_first: bool) -> Network {
    let mut rng = Rng(seed);
    let d = scales.len();
    let w1: Vec<f64> = (0..16)
        .flat_map(|_| scales.iter().map(|s| rng.sym(*s)).collect::<Vec<_>>())
        .collect();
    let b1: Vec<f64> = (0..16).map(|_| rng.sym(50.0)).collect();
    let w2: Vec<f64> = (0..32).map(|_| rng.sym(0.5)).collect();
    let mut nodes = Vec::new();
    if relu_first {
        nodes.push(node("pre", Op::Act(Activation::Relu), 0, vec![d]));
    }
    let x = nodes.len();
    nodes.push(node(
        "fc1",
        Op::Dense {
            weight: Tensor::new(vec![16, d], w1).unwrap(),
            bias: Some(b1),
        },
        x,
        vec![16],
    ));
    nodes.push(node("act", Op::Act(Activation::Relu), x + 1, vec![16]));
    nodes.push(node(
        "fc2",
        Op::Dense {
            weight: Tensor::new(vec![2, 16], w2).unwrap(),
            bias: Some(vec![0.0, 0.0]),
        },
        x + 2,
        vec![2],
    ));
    Network {
        name: "limits-mlp".into(),
        input_shape: vec![d],
        nodes,
        class_names: None,
        schema: None,
        preprocessing: None,
    }
}

fn logits_model(net: &Network) -> Model {
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    Model::compile(net.clone(), config).unwrap()
}

/// Real magnitude a value at the first linear layer's output scale may reach.
fn headroom(model: &Model) -> f64 {
    let plan = model.plan();
    let first = plan
        .steps
        .iter()
        .find(|s| matches!(s.kind, StepKind::Linear { .. }))
        .expect("a linear layer");
    (2f64).powi(62 - plan.value_scale[first.output] as i32)
}

/// The worst case of the first dense layer over the box `|x_j| <= limits[j]`:
/// the largest `sum_j |w_ij| limits[j] + |b_i|`, and the row reaching it.
fn worst_dense(net: &Network, limits: &[f64]) -> (f64, usize) {
    let Some(Op::Dense { weight, bias }) = net
        .nodes
        .iter()
        .map(|n| &n.op)
        .find(|op| matches!(op, Op::Dense { .. }))
    else {
        unreachable!()
    };
    let cols = weight.shape[1];
    weight
        .data
        .chunks(cols)
        .enumerate()
        .map(|(i, r)| {
            let b = bias.as_ref().map_or(0.0, |b| b[i].abs());
            let load: f64 = r.iter().zip(limits).map(|(w, l)| w.abs() * l).sum();
            (load + b, i)
        })
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Columns in units from counts in the tens of thousands to a specific
/// gravity, plus a column no weight reads.
const SCALES: [f64; 6] = [1.5e-4, 150.0, 0.02, 1.0, 3.0, 0.0];

#[test]
fn limits_are_safe_tight_and_in_each_columns_units() {
    for seed in [1, 2, 3] {
        let net = mlp(&SCALES, seed, false);
        let model = logits_model(&net);
        let limits = model.input_limits().unwrap().to_vec();
        let fp = model.config().fixed;
        assert_eq!(limits.len(), SCALES.len());
        for l in &limits {
            assert!(
                *l >= 1.0 && l.log2().fract() == 0.0 && *l < fp.limit(),
                "{l}"
            );
        }
        // Safe: the worst record of the box stays below 2^62 at the first
        // layer's output scale (checked from the network's own weights).
        let room = headroom(&model);
        let (worst, row) = worst_dense(&net, &limits);
        assert!(worst < room, "seed {seed}: {worst} >= {room}");
        // Tight: with every limit doubled, some record of the box would not be.
        let doubled: Vec<f64> = limits.iter().map(|l| 2.0 * l).collect();
        assert!(worst_dense(&net, &doubled).0 > 0.99 * room, "seed {seed}");
        // Per column: the count (weights 1e-4) gets a range a million times
        // that of the specific gravity (weights 150), as their units differ;
        // a single limit for all columns would give the count the gravity's.
        assert!(limits[0] >= 1e5 * limits[1], "{limits:?}");
        let uniform = room / worst_dense(&net, &[1.0; 6]).0;
        assert!(limits[0] > 1e3 * uniform, "{limits:?} vs uniform {uniform}");
        // The unread column gets nearly the format's whole range.
        assert!(limits[5] >= fp.limit() / 64.0, "{limits:?}");

        // Exact at the worst corner of the heaviest row.
        let Op::Dense { weight, .. } = &net.nodes[0].op else {
            unreachable!()
        };
        let w = &weight.data[row * 6..row * 6 + 6];
        let edge: Vec<f64> = w.iter().zip(&limits).map(|(w, l)| l * w.signum()).collect();
        let run = run_local(&model, &model, std::slice::from_ref(&edge), 1).unwrap();
        let got = run.predictions[0].logits.clone().unwrap();
        let to_fixed = max_diff(&got, &model.reference_fixed(&edge).unwrap());
        assert!(
            to_fixed <= model.output_error_bound().unwrap(),
            "{to_fixed}"
        );
        let want = reference::evaluate(&net, &edge);
        let scale = want.iter().fold(1.0, |m: f64, v| m.max(v.abs()));
        assert!(max_diff(&got, &want) <= 1e-3 * scale, "{got:?} vs {want:?}");
    }
}

#[test]
fn one_step_past_a_columns_limit_is_refused_by_record_and_column() {
    let net = mlp(&SCALES, 7, false);
    let model = logits_model(&net);
    let limits = model.input_limits().unwrap().to_vec();
    let mut rng = Rng(11);
    for j in 0..SCALES.len() {
        // Random records well inside, then column j at its limit (accepted)
        // and just past it, either sign (refused, naming record 2 and j + 1).
        let mut records: Vec<Vec<f64>> = (0..3)
            .map(|_| limits.iter().map(|l| rng.sym(0.5 * l)).collect())
            .collect();
        let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
        records[2][j] = sign * limits[j];
        assert!(model.check_records(&records).is_ok(), "column {j}");
        records[2][j] = sign * limits[j] * (1.0 + 1e-12);
        match model.check_records(&records) {
            Err(EngineError::Record {
                record: 2,
                column,
                reason,
            }) => {
                assert_eq!(column, j + 1);
                let l = limits[j];
                assert!(reason.contains(&format!("[-{l}, {l}]")), "{reason}");
                assert!(reason.contains("2^62"), "{reason}");
            }
            other => panic!("column {j}: {other:?}"),
        }
        // The session refuses it the same way (the client checks before sending).
        if j == 1 {
            let err = run_local(&model, &net_public(&net), &records, 2).unwrap_err();
            assert!(
                matches!(
                    err,
                    EngineError::Record {
                        record: 2,
                        column: 2,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }
    // NaN and infinities are refused wherever they are.
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut r = vec![0.0; SCALES.len()];
        r[3] = bad;
        assert!(matches!(
            model.check_records(&[r]),
            Err(EngineError::Record { column: 4, .. })
        ));
    }
}

fn net_public(net: &Network) -> Model {
    logits_model(&net.public())
}

#[test]
fn a_step_other_than_a_linear_layer_reading_the_record_gives_one_limit() {
    let net = mlp(&SCALES, 5, true);
    let model = logits_model(&net);
    let limits = model.input_limits().unwrap();
    assert!(limits.iter().all(|l| *l == limits[0]), "{limits:?}");
    let (worst, _) = worst_dense(&net, limits);
    assert!(worst < headroom(&model));
}

#[test]
fn convolution_limits_are_per_channel_and_safe() {
    // Two input channels, the second with weights 1000 times larger.
    let geom = Conv2dGeom {
        in_ch: 2,
        in_h: 6,
        in_w: 6,
        out_ch: 3,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [1; 4],
        dilation: [1, 1],
        groups: 1,
    };
    let mut rng = Rng(9);
    let weight: Vec<f64> = (0..3 * 2 * 9)
        .map(|i| rng.sym(if (i / 9) % 2 == 0 { 0.01 } else { 10.0 }))
        .collect();
    let bias = vec![1.0, -2.0, 0.5];
    let net = Network {
        name: "limits-conv".into(),
        input_shape: vec![2, 6, 6],
        nodes: vec![
            node(
                "conv",
                Op::Conv2d {
                    geom,
                    weight: Tensor::new(vec![3, 2, 3, 3], weight.clone()).unwrap(),
                    bias: Some(bias.clone()),
                },
                0,
                vec![3, 6, 6],
            ),
            node("act", Op::Act(Activation::Relu), 1, vec![3, 6, 6]),
        ],
        class_names: None,
        schema: None,
        preprocessing: None,
    };
    let model = logits_model(&net);
    let limits = model.input_limits().unwrap();
    let (a, b) = (limits[0], limits[36]);
    assert!(limits[..36].iter().all(|l| *l == a) && limits[36..].iter().all(|l| *l == b));
    assert!(a >= 256.0 * b, "{a} vs {b}");
    // Worst output: every tap of an interior position at its channel's limit.
    let worst = weight
        .chunks(18)
        .zip(&bias)
        .map(|(w, bias)| {
            let load: f64 = w
                .iter()
                .enumerate()
                .map(|(k, v)| v.abs() * if k < 9 { a } else { b })
                .sum();
            load + bias.abs()
        })
        .fold(0.0, f64::max);
    let room = headroom(&model);
    assert!(
        worst < room && 2.0 * worst > 0.99 * room,
        "{worst} vs {room}"
    );
}
