//! Whole networks, all three roles in one process: secure results equal the
//! engine's fixed-point reference (up to the truncations' round-ups), and the
//! measured traffic equals the plan's prediction exactly.

use cryptmed_engine::local::run_local;
use cryptmed_engine::{EngineConfig, Model, Reveal};
use cryptmed_model::{Activation, zoo};

fn check(net: cryptmed_model::Network, reveal: Reveal, records: usize, batch: usize) {
    let config = EngineConfig {
        reveal,
        ..EngineConfig::default()
    };
    let model = Model::compile(net.clone(), config).unwrap();
    let inputs = zoo::random_inputs(&net, records, 3);
    let run = run_local(&model, &model, &inputs, batch).unwrap();
    assert_eq!(run.predictions.len(), records);
    for (i, (x, p)) in inputs.iter().zip(&run.predictions).enumerate() {
        let want = model.reference_fixed(x).unwrap();
        let want_label = want
            .iter()
            .enumerate()
            .fold(0, |b, (j, v)| if *v > want[b] { j } else { b });
        match reveal {
            Reveal::Logits => {
                let got = p.logits.as_ref().unwrap();
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(
                    err < 1e-2,
                    "{}: record {i}: max error {err} vs fixed reference",
                    net.name
                );
            }
            _ => assert!(p.logits.is_none() && p.probabilities.is_none()),
        }
        let mut sorted = want.clone();
        sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
        if sorted.len() < 2 || sorted[0] - sorted[1] > 1e-3 {
            assert_eq!(p.label, want_label, "{}: record {i}", net.name);
        }
    }
    // Exact traffic: measured = predicted, per batch.
    for (k, (pr, cr)) in run.provider.iter().zip(&run.client).enumerate() {
        let n = if (k + 1) * batch <= records {
            batch
        } else {
            records - k * batch
        };
        let t = model.predict(n);
        let (tp, tc) = (t.provider_stats(), t.client_stats());
        assert_eq!(
            (pr.online_bytes_sent, pr.online_bytes_recv, pr.online_rounds),
            (tp.bytes_sent, tp.bytes_recv, tp.rounds),
            "{} provider",
            net.name
        );
        assert_eq!(
            (cr.online_bytes_sent, cr.online_bytes_recv, cr.online_rounds),
            (tc.bytes_sent, tc.bytes_recv, tc.rounds),
            "{} client",
            net.name
        );
    }
    assert_eq!(run.setup_bytes, model.setup_bytes());
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
    let err = run_local(&a, &b, &[vec![0.5; 30]], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("plan mismatch"), "{err}");
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
        let softmax_out = matches!(
            net.nodes.last().map(|n| &n.op),
            Some(cryptmed_model::Op::Softmax)
        );
        for (x, p) in inputs.iter().zip(&run.predictions) {
            let all = reference::evaluate_all(&net, x);
            // With a softmax at the output, logits are the values before it.
            let want = if softmax_out {
                &all[all.len() - 2]
            } else {
                &all[all.len() - 1]
            };
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
