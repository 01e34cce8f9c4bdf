//! Whole networks, all three roles in one process: secure results equal the
//! engine's fixed-point reference (up to the truncations' round-ups), and the
//! measured traffic equals the plan's prediction exactly.

use cryptmed_engine::local::run_local;
use cryptmed_engine::{EngineConfig, EngineError, Model, Reveal};
use cryptmed_model::{Activation, Network, Node, Op, Tensor, reference, zoo};
use cryptmed_ring::FixedPoint;

mod common;

use common::{F64_TOLERANCE, check_inputs, max_diff};

fn check(net: Network, reveal: Reveal, records: usize, batch: usize) {
    check_with(net, reveal, records, batch, FixedPoint::default());
}

fn check_with(net: Network, reveal: Reveal, records: usize, batch: usize, fixed: FixedPoint) {
    let inputs = zoo::random_inputs(&net, records, 3);
    check_inputs(&net, reveal, &inputs, batch, fixed);
}

#[test]
fn secureml_mlp_logits_and_labels() {
    let net = zoo::build("secureml-mlp", 1).unwrap();
    check(net.clone(), Reveal::Logits, 3, 1);
    check(net, Reveal::Label, 5, 2);
}

#[test]
fn medical_mlp_batches() {
    check(zoo::build("medical-mlp", 2).unwrap(), Reveal::Logits, 7, 3);
    check(
        zoo::medical_mlp(8, 3, Activation::Relu, 5),
        Reveal::Label,
        4,
        4,
    );
}

#[test]
fn chameleon_and_minionn_mnist() {
    check(
        zoo::build("chameleon-cnn", 3).unwrap(),
        Reveal::Logits,
        2,
        1,
    );
    check(zoo::build("minionn-mnist", 4).unwrap(), Reveal::Label, 2, 2);
}

#[test]
fn plan_mismatch_is_a_typed_error() {
    let a = Model::compile(
        zoo::build("medical-mlp", 1).unwrap(),
        EngineConfig::default(),
    )
    .unwrap();
    let b = Model::compile(
        zoo::medical_mlp(30, 2, Activation::Relu, 1),
        EngineConfig {
            reveal: Reveal::Logits,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    assert_ne!(a.architecture_digest(), b.architecture_digest());
    let err = run_local(&a, &b, &[vec![0.5; 30]], 1).unwrap_err();
    assert!(matches!(err, EngineError::PlanMismatch(_)), "{err:?}");
}

#[test]
fn leaky_relu_network() {
    check(
        zoo::medical_mlp(12, 3, Activation::LeakyRelu { alpha: 0.1 }, 9),
        Reveal::Logits,
        3,
        3,
    );
}

#[test]
fn smooth_activation_networks_match_both_references() {
    use cryptmed_model::reference;
    for act in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Elu { alpha: 1.0 },
        Activation::Selu,
        Activation::Silu,
        Activation::GeluErf,
        Activation::GeluTanh,
    ] {
        let net = zoo::medical_mlp(30, 2, act, 4);
        check(net.clone(), Reveal::Logits, 3, 3);
        // Against exact f64: the approximation error stays small end to end.
        let model = Model::compile(
            net.clone(),
            EngineConfig {
                reveal: Reveal::Logits,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let inputs = zoo::random_inputs(&net, 4, 8);
        let run = run_local(&model, &model, &inputs, 4).unwrap();
        for (x, p) in inputs.iter().zip(&run.predictions) {
            let want = reference::evaluate(&net, x);
            let err = p
                .logits
                .as_ref()
                .unwrap()
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 5e-3, "{}: error {err} vs f64", act.name());
        }
    }
}

#[test]
fn public_network_gives_the_same_plan() {
    for name in zoo::NAMES {
        let net = zoo::build(name, 2).unwrap();
        let a = Model::compile(net.clone(), EngineConfig::default()).unwrap();
        let b = Model::compile(net.public(), EngineConfig::default()).unwrap();
        assert_eq!(a.architecture_digest(), b.architecture_digest(), "{name}");
        assert!(net.public().is_public() && !net.is_public());
    }
    // And a session where dealer and client only have the public network.
    let net = zoo::build("medical-mlp", 3).unwrap();
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    let full = Model::compile(net.clone(), config).unwrap();
    let public = Model::compile(net.public(), config).unwrap();
    let inputs = zoo::random_inputs(&net, 2, 1);
    let run = run_local(&full, &public, &inputs, 2).unwrap();
    for (x, p) in inputs.iter().zip(&run.predictions) {
        let want = full.reference_fixed(x).unwrap();
        for (a, b) in p.logits.as_ref().unwrap().iter().zip(&want) {
            assert!((a - b).abs() < 1e-3);
        }
    }
    // A provider given the public network refuses clearly.
    let err = run_local(&public, &public, &inputs, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no weights"), "{err}");
}

/// A binary head's label is `p >= 0.5`, decided securely: exactly at the
/// threshold (logit 0, p = 0.5) it is 1, one unit below it is 0.
#[test]
fn binary_head_label_is_p_at_least_one_half() {
    let ulp = 2f64.powi(-16);
    let net = Network {
        name: "threshold".into(),
        input_shape: vec![1],
        nodes: vec![
            Node {
                name: "logit".into(),
                op: Op::Dense {
                    weight: Tensor::new(vec![1, 1], vec![1.0]).unwrap(),
                    bias: Some(vec![0.0]),
                },
                inputs: vec![0],
                shape: vec![1],
            },
            Node {
                name: "p".into(),
                op: Op::Act(Activation::Sigmoid),
                inputs: vec![1],
                shape: vec![1],
            },
        ],
        class_names: None,
        schema: None,
        preprocessing: None,
    };
    let inputs: Vec<Vec<f64>> = [0.0, -ulp, ulp, -1.0, 1.0, -300.0, 300.0]
        .iter()
        .map(|v| vec![*v])
        .collect();
    let model = Model::compile(net.clone(), EngineConfig::default()).unwrap();
    let run = run_local(&model, &model, &inputs, 3).unwrap();
    let labels: Vec<usize> = run.predictions.iter().map(|p| p.label).collect();
    assert_eq!(labels, [1, 0, 1, 0, 1, 0, 1]);
    for (x, l) in inputs.iter().zip(&labels) {
        assert_eq!(reference::label(&net, &reference::evaluate(&net, x)), *l);
    }
    // Probabilities are the softmax of [0, logit]: [1 - p, p].
    let config = EngineConfig {
        reveal: Reveal::Probabilities,
        ..EngineConfig::default()
    };
    let model = Model::compile(net, config).unwrap();
    let run = run_local(&model, &model, &inputs[3..5], 2).unwrap();
    for (x, p) in inputs[3..5].iter().zip(&run.predictions) {
        let want = 1.0 / (1.0 + (-x[0]).exp());
        let got = p.probabilities.as_ref().unwrap();
        assert!(
            (got[1] - want).abs() < 3e-3 && (got[0] - (1.0 - want)).abs() < 3e-3,
            "{got:?} vs {want}"
        );
    }
}

#[test]
fn imported_pytorch_models_run_securely() {
    use cryptmed_model::{onnx, reference};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures");
    for f in [
        "residual_torchscript17",
        "residual_dynamo18",
        "mlp_selu_torchscript17",
        "mlp_leakyrelu_dynamo18",
        "mlp_gelu_tanh_dynamo18",
        "mlp_gelu_torchscript13",
        "mlp_softplus_dynamo18",
        "cnn_bn_pool_softmax_torchscript17",
        "grouped_depthwise_torchscript17",
        "grouped_depthwise_dynamo18",
        "dense_concat_torchscript17",
        "dense_concat_dynamo18",
        "clip_variants_torchscript17",
        "clip_variants_dynamo18",
        "same_pad_pools_torchscript17",
        "same_pad_pools_dynamo18",
        "sigmoid_head_torchscript17",
        "sigmoid_head_dynamo18",
        "logit_head_torchscript17",
        "logit_head_dynamo18",
    ] {
        let net = onnx::load(&dir.join(format!("{f}.onnx"))).unwrap();
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{f}.json"))).unwrap())
                .unwrap();
        let inputs: Vec<Vec<f64>> = spec["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                x.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        let model = Model::compile(
            net.clone(),
            EngineConfig {
                reveal: Reveal::Logits,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let public = Model::compile(
            net.public(),
            EngineConfig {
                reveal: Reveal::Logits,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let run = run_local(&model, &public, &inputs, 2).unwrap();
        let last = net.nodes.last().map(|n| &n.op);
        let squashed = matches!(
            last,
            Some(cryptmed_model::Op::Softmax | cryptmed_model::Op::Act(Activation::Sigmoid))
        );
        for (x, p) in inputs.iter().zip(&run.predictions) {
            let all = reference::evaluate_all(&net, x);
            // With a softmax or a binary sigmoid at the output, logits are the
            // values before it; a binary head's single logit `z` is `[0, z]`.
            let mut want = if squashed {
                all[all.len() - 2].clone()
            } else {
                all[all.len() - 1].clone()
            };
            if want.len() == 1 {
                want.insert(0, 0.0);
            }
            let want = &want;
            let got = p.logits.as_ref().unwrap();
            let err = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 5e-3, "{f}: secure {got:?} vs f64 {want:?}");
        }
    }
}

#[test]
fn probabilities_policy_reveals_a_secure_softmax() {
    use cryptmed_model::reference;
    let net = zoo::medical_mlp(30, 3, Activation::Relu, 6);
    let model = Model::compile(
        net.clone(),
        EngineConfig {
            reveal: Reveal::Probabilities,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let inputs = zoo::random_inputs(&net, 5, 2);
    let run = run_local(&model, &model, &inputs, 5).unwrap();
    let t = model.predict(5);
    assert_eq!(
        run.provider[0]
            .online_rounds
            .max(run.client[0].online_rounds),
        t.rounds()
    );
    for (x, p) in inputs.iter().zip(&run.predictions) {
        let logits = reference::evaluate(&net, x);
        let m = logits.iter().cloned().fold(f64::MIN, f64::max);
        let s: f64 = logits.iter().map(|v| (v - m).exp()).sum();
        let probs = p.probabilities.as_ref().unwrap();
        assert!(p.logits.is_none());
        for (g, l) in probs.iter().zip(&logits) {
            let want = (l - m).exp() / s;
            assert!(
                (g - want).abs() <= 5e-3 * want + 5e-4,
                "p = {g}, want {want}"
            );
        }
    }
    let too_many = zoo::medical_mlp(4, 20, Activation::Relu, 1);
    let err = Model::compile(
        too_many,
        EngineConfig {
            reveal: Reveal::Probabilities,
            ..EngineConfig::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("up to 16 classes"), "{err}");
}

/// Secure logits of one record against both references.
fn logits_errors(model: &Model, net: &Network, x: &[f64]) -> (f64, f64) {
    let run = run_local(model, model, &[x.to_vec()], 1).unwrap();
    let got = run.predictions[0].logits.clone().unwrap();
    (
        max_diff(&got, &model.reference_fixed(x).unwrap()),
        max_diff(&got, &reference::evaluate(net, x)),
    )
}

#[test]
fn all_six_benchmark_networks_one_record_each() {
    for name in zoo::NAMES {
        let net = zoo::build(name, 7).unwrap();
        check(net.clone(), Reveal::Logits, 1, 1);
        let model = Model::compile(
            net.clone(),
            EngineConfig {
                reveal: Reveal::Logits,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let x = &zoo::random_inputs(&net, 1, 5)[0];
        let (_, to_f64) = logits_errors(&model, &net, x);
        assert!(to_f64 <= F64_TOLERANCE, "{name}: {to_f64} from f64");
    }
}

/// The issue's targets (batch 1, `--random-weights`, logits revealed as
/// `cryptmed bench` runs them) and the exact costs the plans predict; the
/// measured traffic equals the prediction (asserted by `check`).
#[test]
fn issue_targets_from_the_cost_traces() {
    // (network, target bytes, target rounds, exact bytes, exact rounds)
    let table = [
        ("secureml-mlp", 48_000, 22, 15_376, 13),
        ("chameleon-cnn", 150_000, 22, 44_512, 13),
        ("minionn-mnist", 1_500_000, 64, 309_442, 43),
        ("securenn-lenet", 2_000_000, 64, 454_582, 43),
        ("minionn-cifar", 22_000_000, 72, 5_633_360, 43),
        ("medical-mlp", 16_000, 22, 3_640, 13),
    ];
    for (name, max_bytes, max_rounds, bytes, rounds) in table {
        let model = Model::compile(
            zoo::build(name, 1).unwrap(),
            EngineConfig {
                reveal: Reveal::Logits,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let t = model.predict(1);
        assert_eq!((t.bytes(), t.rounds()), (bytes, rounds), "{name}");
        assert!(bytes <= max_bytes && rounds <= max_rounds, "{name}");
    }
    // ReLU: at most 120 bytes and 9 rounds per element; exactly 27.25 and 6.
    let relu = cryptmed_protocols::relu::cost(&cryptmed_protocols::Ppa::default(), 1024);
    assert_eq!((relu.bytes, relu.rounds), (27_904, 6));
    assert!(relu.bytes <= 120 * 1024 && relu.rounds <= 9);
}

/// Records beyond the model's per-column input range are refused with the
/// record, the column and the range; records at the very edge of it (the
/// worst corner of the heaviest row) run correctly.
#[test]
fn input_range_is_enforced_and_sound() {
    let net = zoo::build("medical-mlp", 2).unwrap();
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    let model = Model::compile(net.clone(), config).unwrap();
    let limits = model.input_limits().unwrap().to_vec();
    assert_eq!(limits.len(), net.input_len());
    assert!(
        limits
            .iter()
            .all(|l| *l >= 1024.0 && l.log2().fract() == 0.0),
        "{limits:?}"
    );
    // Scaled by 1e8 these inputs encode fine at 16 fractional bits, but the
    // first layer's output would pass 2^62: refused, never garbage.
    let mut records = zoo::random_inputs(&net, 3, 1);
    records[1][7] *= 1e8;
    let err = run_local(&model, &model, &records, 1).unwrap_err();
    let EngineError::Record { record, column, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*record, *column), (1, 8));
    let l = limits[7];
    assert!(err.to_string().contains(&format!("[-{l}, {l}]")), "{err}");
    assert!(matches!(
        model.check_records(&records),
        Err(EngineError::Record {
            record: 1,
            column: 8,
            ..
        })
    ));
    // The client learns the limits from the provider even with the public network.
    let public = Model::compile(net.public(), config).unwrap();
    assert_eq!(public.input_limits(), None);
    let err = run_local(&model, &public, &records, 3).unwrap_err();
    assert!(matches!(err, EngineError::Record { .. }), "{err:?}");
    assert!(matches!(
        model.reference_fixed(&records[1]),
        Err(EngineError::Record { .. })
    ));
    // At the limits, with the signs of the heaviest row of the first layer
    // (the worst case of the bound), the result is still exact.
    let Op::Dense { weight, .. } = &net.nodes[0].op else {
        unreachable!()
    };
    let cols = weight.shape[1];
    let load = |r: &[f64]| {
        r.iter()
            .zip(&limits)
            .map(|(w, l)| (w * l).abs())
            .sum::<f64>()
    };
    let row = weight
        .data
        .chunks(cols)
        .max_by(|a, b| load(a).total_cmp(&load(b)))
        .unwrap();
    let edge: Vec<f64> = row
        .iter()
        .zip(&limits)
        .map(|(w, l)| l * w.signum())
        .collect();
    let (to_fixed, to_f64) = logits_errors(&model, &net, &edge);
    assert!(
        to_fixed <= model.output_error_bound().unwrap(),
        "{to_fixed}"
    );
    let scale = reference::evaluate(&net, &edge)
        .iter()
        .fold(1.0, |m: f64, v| m.max(v.abs()));
    // Relative to magnitudes this large, only the weights' encoding (2^-16
    // against weights of about 0.1) separates the two; an overflow would be
    // off by many orders of magnitude.
    assert!(to_f64 <= 1e-3 * scale, "{to_f64} vs magnitude {scale}");
}

#[test]
fn fractional_bits_are_validated_at_compile_time() {
    let net = zoo::build("secureml-mlp", 1).unwrap();
    for f in [24, 30] {
        let err = Model::compile(
            net.clone(),
            EngineConfig {
                fixed: FixedPoint::new(f).unwrap(),
                ..EngineConfig::default()
            },
        )
        .unwrap_err();
        let EngineError::Unsupported(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains(&format!("{f} fractional bits leave no headroom")),
            "{msg}"
        );
    }
    // Smooth-function tables exist for 12 to 20 fractional bits only.
    let err = Model::compile(
        zoo::medical_mlp(8, 2, Activation::Sigmoid, 1),
        EngineConfig {
            fixed: FixedPoint::new(22).unwrap(),
            ..EngineConfig::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, EngineError::Unsupported(m) if m.contains("use 12 to 20")),
        "{err:?}"
    );
}

#[test]
fn engine_runs_at_12_and_20_fractional_bits() {
    for f in [12, 20] {
        let fixed = FixedPoint::new(f).unwrap();
        for name in ["secureml-mlp", "minionn-mnist"] {
            let net = zoo::build(name, 3).unwrap();
            check_with(net.clone(), Reveal::Logits, 1, 1, fixed);
            check_with(net.clone(), Reveal::Label, 2, 2, fixed);
            let model = Model::compile(
                net.clone(),
                EngineConfig {
                    reveal: Reveal::Logits,
                    fixed,
                    ..EngineConfig::default()
                },
            )
            .unwrap();
            let (_, to_f64) = logits_errors(&model, &net, &zoo::random_inputs(&net, 1, 9)[0]);
            assert!(
                to_f64 <= F64_TOLERANCE * 2f64.powi(16 - f as i32),
                "{name} f={f}: {to_f64}"
            );
        }
    }
}

/// A per-channel affine map (batch norm) right after a convolution or a
/// dense layer is folded into it: no separate (diagonal) secure layer.
#[test]
fn batch_norm_after_conv_and_dense_is_folded() {
    use cryptmed_ring::kernels::Conv2dGeom;
    let geom = Conv2dGeom {
        in_ch: 2,
        in_h: 6,
        in_w: 6,
        out_ch: 3,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [1, 1, 1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let param = |n: usize, k: f64| -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 * 0.37 + k).sin()) * 0.5)
            .collect()
    };
    let node = |name: &str, op: Op, input: usize, shape: Vec<usize>| Node {
        name: name.into(),
        op,
        inputs: vec![input],
        shape,
    };
    let nodes = vec![
        node(
            "conv",
            Op::Conv2d {
                geom,
                weight: Tensor::new(vec![3, 2, 3, 3], param(54, 0.1)).unwrap(),
                bias: Some(param(3, 0.2)),
            },
            0,
            vec![3, 6, 6],
        ),
        node(
            "bn1",
            Op::Affine {
                scale: param(3, 1.0).iter().map(|v| v + 1.0).collect(),
                shift: param(3, 2.0),
            },
            1,
            vec![3, 6, 6],
        ),
        node("relu1", Op::Act(Activation::Relu), 2, vec![3, 6, 6]),
        node("flat", Op::Reshape, 3, vec![108]),
        node(
            "fc",
            Op::Dense {
                weight: Tensor::new(vec![5, 108], param(540, 0.3)).unwrap(),
                bias: None,
            },
            4,
            vec![5],
        ),
        node(
            "bn2",
            Op::Affine {
                scale: vec![0.7],
                shift: param(5, 3.0),
            },
            5,
            vec![5],
        ),
    ];
    let net = Network {
        name: "conv-bn".into(),
        input_shape: vec![2, 6, 6],
        nodes,
        class_names: None,
        schema: None,
        preprocessing: None,
    };
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    let model = Model::compile(net.clone(), config).unwrap();
    let linear: Vec<&str> = model
        .plan()
        .steps
        .iter()
        .filter(|s| matches!(s.kind, cryptmed_engine::StepKind::Linear { .. }))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(linear, ["conv", "fc"]);
    let public = Model::compile(net.public(), config).unwrap();
    assert_eq!(model.architecture_digest(), public.architecture_digest());
    check(net.clone(), Reveal::Logits, 2, 2);
    for x in zoo::random_inputs(&net, 2, 4) {
        let (_, to_f64) = logits_errors(&model, &net, &x);
        assert!(to_f64 <= F64_TOLERANCE, "{to_f64}");
    }
}

/// `Debug` of the compiled model and its plan shows shapes, never weights.
#[test]
fn debug_never_prints_weights() {
    let mut net = zoo::build("medical-mlp", 1).unwrap();
    for n in &mut net.nodes {
        if let Op::Dense { weight, bias } = &mut n.op {
            weight.data.iter_mut().for_each(|w| *w = 0.123_456_789);
            bias.iter_mut().flatten().for_each(|b| *b = -0.987_654_321);
        }
    }
    let model = Model::compile(net, EngineConfig::default()).unwrap();
    let shown = format!("{model:?} {model:#?} {:?}", model.plan());
    for secret in ["0.123", "123456", "0.987", "987654", "8091", "4216"] {
        // 8091 and 4216: the leading digits of the weight and bias encoded at 2^16 and 2^24.
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("weights: 1920"), "{shown}");
}
