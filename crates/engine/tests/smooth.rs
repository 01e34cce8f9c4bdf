//! Smooth steps inside networks: the fused input truncation, exp's finer
//! output scale (and the truncation the planner inserts before the next
//! linear layer), SELU and leaky ReLU exact on the whole input range, the
//! symmetric method, the softmax output; secure results against the
//! engine's fixed-point reference and against f64, traffic equal to the
//! prediction.

use cryptmed_engine::local::run_local;
use cryptmed_engine::{EngineConfig, Model, Reveal, SmoothMethod, StepKind};
use cryptmed_model::{Activation, Network, Node, Op, Tensor, reference, zoo};

/// `x -> act(x)` element-wise on `n` inputs (an identity dense layer first,
/// so the step gets its input at the linear layer's scale, as in real models).
fn elementwise(act: Activation, n: usize, then_dense: bool) -> Network {
    let mut eye = vec![0.0; n * n];
    for i in 0..n {
        eye[i * n + i] = 1.0;
    }
    let mut nodes = vec![
        Node {
            name: "fc".into(),
            op: Op::Dense {
                weight: Tensor::new(vec![n, n], eye.clone()).unwrap(),
                bias: None,
            },
            inputs: vec![0],
            shape: vec![n],
        },
        Node {
            name: "act".into(),
            op: Op::Act(act),
            inputs: vec![1],
            shape: vec![n],
        },
    ];
    if then_dense {
        nodes.push(Node {
            name: "fc2".into(),
            op: Op::Dense {
                weight: Tensor::new(vec![n, n], eye).unwrap(),
                bias: None,
            },
            inputs: vec![2],
            shape: vec![n],
        });
    }
    Network {
        name: format!("elementwise-{}", act.name()),
        input_shape: vec![n],
        nodes,
        class_names: None,
        schema: None,
        preprocessing: None,
    }
}

fn config(smooth: SmoothMethod) -> EngineConfig {
    EngineConfig {
        reveal: Reveal::Logits,
        smooth,
        ..EngineConfig::default()
    }
}

/// Runs `records` securely; asserts the traffic equals the prediction and
/// the result is within `ulps` of the fixed-point reference; returns the outputs.
fn run(model: &Model, records: &[Vec<f64>], ulps: f64) -> Vec<Vec<f64>> {
    let out = run_local(model, model, records, records.len()).unwrap();
    let t = model.predict(records.len());
    let (p, c) = (&out.provider[0], &out.client[0]);
    assert_eq!(
        (p.online_bytes_sent, p.online_bytes_recv, p.online_rounds),
        (
            t.provider_stats().bytes_sent,
            t.provider_stats().bytes_recv,
            t.provider_stats().rounds
        )
    );
    assert_eq!(c.online_rounds, t.client_stats().rounds);
    let ulp = model.config().fixed.ulp();
    records
        .iter()
        .zip(&out.predictions)
        .map(|(x, pr)| {
            let got = pr.logits.clone().unwrap();
            let want = model.reference_fixed(x).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= ulps * ulp * w.abs().max(1.0),
                    "{}: secure {g} vs fixed reference {w}",
                    model.network().name
                );
            }
            got
        })
        .collect()
}

/// Inputs over the whole range the model accepts (its input limits), with the small ones dense.
fn sweep(model: &Model, n: usize) -> Vec<f64> {
    // Every column has the same weight here, so the same limit; take the smallest.
    let lim = model
        .input_limits()
        .unwrap()
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let mut xs = vec![
        0.0,
        1e-3,
        -1e-3,
        0.5,
        -0.5,
        3.0,
        -3.0,
        100.0,
        -100.0,
        lim * 0.999,
        -lim * 0.999,
    ];
    let mut e = 1.0;
    while e < lim && xs.len() < n {
        xs.extend([e * 1.37, -e * 1.37]);
        e *= 8.0;
    }
    let mut i = 0;
    while xs.len() < n {
        xs.push(-12.0 + 20.0 * i as f64 / n as f64);
        i += 1;
    }
    xs.truncate(n);
    xs
}

/// SELU and leaky ReLU carry their slopes in the table: the error stays at a
/// few units over the whole input range (SELU's public scale step was 4e-4 off at 100).
#[test]
fn selu_and_leaky_relu_are_exact_on_the_whole_range() {
    for (act, bound) in [
        (Activation::Selu, 3e-4),
        (Activation::LeakyRelu { alpha: 0.01 }, 5e-5),
        (Activation::LeakyRelu { alpha: 0.2 }, 5e-5),
    ] {
        let net = elementwise(act, 64, false);
        let model = Model::compile(net.clone(), config(SmoothMethod::Direct)).unwrap();
        assert!(
            !model
                .plan()
                .steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Trunc { .. })),
            "{}: the input truncation is fused",
            act.name()
        );
        let xs = sweep(&model, 64);
        let got = run(&model, std::slice::from_ref(&xs), 2.0);
        for (x, g) in xs.iter().zip(&got[0]) {
            let want = reference::activation(act, *x);
            assert!(
                (g - want).abs() <= bound + want.abs() * 1e-15,
                "{}({x}) = {g}, want {want}",
                act.name()
            );
        }
    }
}

/// Exp's output has 36 fractional bits: relative 5e-4 on all of [-16, 8],
/// 0 below; before the next linear layer the planner truncates it to `f`.
#[test]
fn exp_keeps_its_fine_scale_until_a_linear_layer() {
    let net = elementwise(Activation::Exp, 128, false);
    let model = Model::compile(net.clone(), config(SmoothMethod::Direct)).unwrap();
    assert_eq!(model.plan().output.scale, 36);
    let xs: Vec<f64> = (0..128)
        .map(|i| {
            if i < 120 {
                -16.0 + 24.0 * i as f64 / 119.0
            } else {
                -16.5 - i as f64
            }
        })
        .collect();
    let got = run(&model, std::slice::from_ref(&xs), 2.0);
    for (x, g) in xs.iter().zip(&got[0]) {
        let want = x.exp();
        if *x >= -16.0 {
            assert!(
                (g - want).abs() <= 5e-4 * want,
                "exp({x}) = {g}, want {want}"
            );
        } else {
            assert!((g - want).abs() <= (-16f64).exp(), "exp({x}) = {g}");
        }
    }
    let net = elementwise(Activation::Exp, 16, true);
    let model = Model::compile(net.clone(), config(SmoothMethod::Direct)).unwrap();
    let truncs: Vec<u32> = model
        .plan()
        .steps
        .iter()
        .filter_map(|s| match s.kind {
            StepKind::Trunc { shift } => Some(shift),
            _ => None,
        })
        .collect();
    assert_eq!(truncs, [20], "exp's 36 bits truncated to 16 before fc2");
    let xs: Vec<f64> = (0..16).map(|i| -3.0 + 0.6 * i as f64).collect();
    let got = run(&model, std::slice::from_ref(&xs), 2.0);
    for (x, g) in xs.iter().zip(&got[0]) {
        assert!(
            (g - x.exp()).abs() <= 5e-4 * x.exp() + 1e-4,
            "exp({x}) then fc2 = {g}"
        );
    }
}

/// The symmetric method runs the same functions to the same bounds with
/// fewer online bytes and 6 more rounds per smooth layer.
#[test]
fn symmetric_method_in_networks() {
    for act in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Silu,
        Activation::GeluErf,
        Activation::Elu { alpha: 1.0 },
    ] {
        let net = zoo::medical_mlp(30, 2, act, 4);
        let direct = Model::compile(net.clone(), config(SmoothMethod::Direct)).unwrap();
        let sym = Model::compile(net.clone(), config(SmoothMethod::Symmetric)).unwrap();
        let (td, ts) = (direct.predict(4), sym.predict(4));
        let symmetric_steps = sym
            .plan()
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.kind,
                    StepKind::Smooth {
                        symmetric: true,
                        ..
                    }
                )
            })
            .count() as u64;
        if act.name() == "elu" {
            assert_eq!(symmetric_steps, 0, "ELU has no symmetry: direct");
            assert_eq!(td, ts);
        } else {
            assert_eq!(symmetric_steps, 2, "{}", act.name());
            assert!(
                ts.bytes() < td.bytes(),
                "{}: {} vs {}",
                act.name(),
                ts.bytes(),
                td.bytes()
            );
            assert_eq!(
                ts.rounds(),
                td.rounds() + 6 * symmetric_steps,
                "{}",
                act.name()
            );
        }
        let inputs = zoo::random_inputs(&net, 4, 8);
        let got = run(&sym, &inputs, 32.0);
        for (x, g) in inputs.iter().zip(&got) {
            let want = reference::evaluate(&net, x);
            for (a, b) in g.iter().zip(&want) {
                assert!((a - b).abs() < 5e-3, "{}: {a} vs f64 {b}", act.name());
            }
        }
    }
}

/// A sigmoid layer fuses its input truncation (no `.trunc` step: one round
/// and 16 bytes per element less than before), as ReLU does.
#[test]
fn smooth_layers_fuse_their_input_truncation() {
    let net = zoo::medical_mlp(30, 2, Activation::Sigmoid, 1);
    let model = Model::compile(net, config(SmoothMethod::Direct)).unwrap();
    let steps = &model.plan().steps;
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Trunc { .. }))
    );
    let shifts: Vec<u32> = steps
        .iter()
        .filter_map(|s| match s.kind {
            StepKind::Smooth { shift, .. } => Some(shift),
            _ => None,
        })
        .collect();
    assert_eq!(shifts, [24, 20], "first layer at 2f + 8, then 2f + 4");
    // 3 linear + 2 smooth layers (7 rounds each, the linear messages merged) + the reveal.
    assert_eq!(model.predict(1).rounds(), 15);
}
