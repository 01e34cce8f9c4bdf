//! Per-column input precision (issue 13): a record whose columns live on
//! very different scales (a fractal dimension near 1e-3, a count near 1e4,
//! a z-score near 1) is encoded column by column with the exponents the
//! public schema gives, the first dense layer absorbs them exactly, and the
//! first layer's error is then small relative to each column's own scale.
//! Compared against the `f64` reference, with and without the schema, on
//! random records over the whole declared ranges and at their corners.

use cryptmed_engine::local::run_local;
use cryptmed_engine::{EngineConfig, Fidelity, Model, Reveal};
use cryptmed_model::{Activation, Feature, FeatureSchema, Network, Op, Tensor};

mod common;
use common::{Rng, node};

/// Columns: (low, high) of the plausible range, and the standardisation's
/// mean and deviation folded into the graph.
const COLUMNS: [(f64, f64, f64, f64); 4] = [
    (0.0005, 0.004, 0.002, 0.0005), // a fractal dimension: values near 1e-3
    (2e3, 2e4, 1e4, 2e3),           // a count near 1e4
    (-1.0, 1.0, 0.0, 0.5),          // already a z-score
    (1.003, 1.027, 1.015, 0.005),   // a specific gravity: near 1, varies in the third decimal
];

/// Standardisation in the graph, then 4-16-2 with a ReLU: the layout of the
/// committed medical models.
fn network(schema: bool) -> Network {
    let mut rng = Rng(7);
    let d = COLUMNS.len();
    let w1: Vec<f64> = (0..16 * d).map(|_| rng.unit() - 0.5).collect();
    let b1: Vec<f64> = (0..16).map(|_| 0.2 * (rng.unit() - 0.5)).collect();
    let w2: Vec<f64> = (0..32).map(|_| rng.unit() - 0.5).collect();
    let scale = COLUMNS.iter().map(|c| 1.0 / c.3).collect();
    let shift = COLUMNS.iter().map(|c| -c.2 / c.3).collect();
    let nodes = vec![
        node("standardise", Op::Affine { scale, shift }, 0, vec![d]),
        node(
            "fc1",
            Op::Dense {
                weight: Tensor::new(vec![16, d], w1).unwrap(),
                bias: Some(b1),
            },
            1,
            vec![16],
        ),
        node("relu", Op::Act(Activation::Relu), 2, vec![16]),
        node(
            "fc2",
            Op::Dense {
                weight: Tensor::new(vec![2, 16], w2).unwrap(),
                bias: Some(vec![0.0, 0.0]),
            },
            3,
            vec![2],
        ),
    ];
    let features = COLUMNS
        .iter()
        .enumerate()
        .map(|(j, c)| Feature {
            name: format!("column {j}"),
            unit: None,
            range: Some([c.0, c.1]),
        })
        .collect();
    Network {
        name: "mixed-scales".into(),
        input_shape: vec![d],
        nodes,
        class_names: None,
        preprocessing: None,
        schema: schema.then_some(FeatureSchema { features }),
    }
}

fn compile(net: Network) -> Model {
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    Model::compile(net, config).unwrap()
}

/// Random records over the ranges, plus every corner and the centre.
fn records() -> Vec<Vec<f64>> {
    let mut rng = Rng(11);
    let mut out: Vec<Vec<f64>> = (0..64)
        .map(|_| {
            COLUMNS
                .iter()
                .map(|c| c.0 + rng.unit() * (c.1 - c.0))
                .collect()
        })
        .collect();
    for corner in 0..(1 << COLUMNS.len()) {
        out.push(
            COLUMNS
                .iter()
                .enumerate()
                .map(|(j, c)| if corner >> j & 1 == 1 { c.1 } else { c.0 })
                .collect(),
        );
    }
    out.push(COLUMNS.iter().map(|c| c.2).collect());
    out
}

/// The largest difference between the fixed-point twin and the f64 reference.
fn twin_error(model: &Model, records: &[Vec<f64>]) -> f64 {
    records
        .iter()
        .map(|r| {
            let want = model.reference_logits(r);
            let got = model.reference_fixed(r).unwrap();
            got.iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max)
}

#[test]
fn the_schema_gives_each_column_its_own_exponent() {
    let exponents = network(true).schema.unwrap().input_exponents();
    // Small and narrow columns gain bits, large ones give bits to the weights.
    assert_eq!(exponents, vec![13, -8, 5, 8]);
    let with = compile(network(true));
    assert_eq!(with.plan().input_exponents, exponents);
    let without = compile(network(false));
    assert!(without.plan().input_exponents.is_empty());
    // Public and in the digest: a different schema is a different model.
    assert_ne!(with.architecture_digest(), without.architecture_digest());
    // The limits stay in real units and cover the declared ranges.
    let limits = with.input_limits().unwrap();
    for (l, c) in limits.iter().zip(&COLUMNS) {
        assert!(*l >= c.0.abs().max(c.1.abs()), "limit {l} for {c:?}");
        assert_eq!(l.log2().fract(), 0.0, "limit {l} is a power of two");
    }
}

#[test]
fn per_column_precision_bounds_the_error_on_mixed_scales() {
    let records = records();
    let with = twin_error(&compile(network(true)), &records);
    let without = twin_error(&compile(network(false)), &records);
    // At 16 fractional bits the fractal dimension alone keeps 5 significant
    // bits (its 2^-17 rounding is 0.03 of its deviation): the 16-unit layer
    // sums that to 1e-2. With its own exponents every column is rounded to
    // 2^-17 of its own scale.
    assert!(without > 5e-3, "without a schema: {without}");
    assert!(with < 2e-4, "with a schema: {with}");
    assert!(with * 20.0 < without, "{with} vs {without}");
}

#[test]
fn the_secure_run_matches_the_twin_with_per_column_precision() {
    let net = network(true);
    let model = compile(net.clone());
    let public = compile(net.public());
    let records = records();
    let run = run_local(&model, &public, &records, 16).unwrap();
    let mut fidelity = Fidelity::default();
    for (r, p) in records.iter().zip(&run.predictions) {
        let twin = model.reference_fixed(r).unwrap();
        let got = p.logits.as_ref().unwrap();
        for (g, t) in got.iter().zip(&twin) {
            // The truncations' round-ups: a few units of 2^-16.
            assert!((g - t).abs() <= 1e-4, "secure {g}, twin {t}");
        }
        fidelity.add(&model, r, p).unwrap();
    }
    assert_eq!(fidelity.records, records.len());
    assert!(fidelity.max_abs_logit_error.unwrap() < 3e-4, "{fidelity:?}");
}

#[test]
fn a_record_beyond_a_small_columns_limit_is_refused_in_its_units() {
    let model = compile(network(true));
    let limits = model.input_limits().unwrap().to_vec();
    let mut record: Vec<f64> = COLUMNS.iter().map(|c| c.2).collect();
    record[0] = limits[0] * 1.5;
    let e = model.check_records(&[record]).unwrap_err().to_string();
    assert!(e.contains("record 0, column 1"), "{e}");
    assert!(
        e.contains(&format!("[-{}, {}]", limits[0], limits[0])),
        "{e}"
    );
}
