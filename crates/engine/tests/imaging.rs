//! The imaging networks at full size (ResNet-18, ResNet-50, DenseNet-121,
//! MobileNetV2 at 3x224x224 in torchvision's layout, made by
//! `scripts/make_imaging_models.py` into the git-ignored `data/models/`):
//! the plaintext reference against PyTorch's own outputs, and the secure run
//! against the reference. Each network is skipped, saying so, when its file
//! is absent (a fresh clone); `cryptmed bench --imaging` runs them too.

use std::path::PathBuf;

use cryptmed_engine::local::run_local;
use cryptmed_engine::{EngineConfig, Model, Reveal, StepKind};
use cryptmed_model::{onnx, reference};

fn data(name: &str) -> Option<(PathBuf, serde_json::Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/models");
    let (model, outputs) = (
        dir.join(format!("{name}.onnx")),
        dir.join(format!("{name}.json")),
    );
    if !model.is_file() || !outputs.is_file() {
        eprintln!(
            "skipped {name}: {} is absent (run python3 scripts/make_imaging_models.py)",
            model.display()
        );
        return None;
    }
    let json = serde_json::from_str(&std::fs::read_to_string(outputs).ok()?).ok()?;
    Some((model, json))
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Reference against PyTorch on both inputs; secure logits against the
/// reference on the first, within `1e-3` of the largest logit.
fn check(name: &str) {
    let Some((path, json)) = data(name) else {
        return;
    };
    let net = onnx::load(&path).unwrap();
    let inputs: Vec<Vec<f64>> = json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let outputs: Vec<Vec<f64>> = json["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    for (x, want) in inputs.iter().zip(&outputs) {
        let got = reference::evaluate(&net, x);
        let err = got
            .iter()
            .zip(want)
            .fold(0.0, |m: f64, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-4 * max_abs(want).max(1.0),
            "{name}: reference differs from PyTorch by {err}"
        );
    }
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    let model = Model::compile(net.clone(), config).unwrap();
    let public = Model::compile(net.public(), config).unwrap();
    let run = run_local(&model, &public, &inputs[..1], 1).unwrap();
    let got = run.predictions[0].logits.as_ref().unwrap();
    let want = reference::evaluate(&net, &inputs[0]);
    let err = got
        .iter()
        .zip(&want)
        .fold(0.0, |m: f64, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-3 * max_abs(&want),
        "{name}: secure logits differ from the reference by {err} (largest logit {})",
        max_abs(&want)
    );
    assert_eq!(
        run.predictions[0].label,
        reference::label(&net, &want),
        "{name}"
    );
    eprintln!("{name}: secure logits within {err:.2e} of the f64 reference");
}

#[test]
fn resnet18_at_224() {
    check("resnet18");
}

#[test]
fn resnet50_at_224() {
    check("resnet50");
}

#[test]
fn densenet121_at_224() {
    check("densenet121");
}

#[test]
fn mobilenetv2_at_224() {
    check("mobilenetv2");
}

/// The ResNet stem (Conv, ReLU, max pool 3x3/2 with padding 1) as exported
/// by torch: the pool runs first, rows then columns, and the ReLU on its
/// 64x56x56 outputs, a quarter of the convolution's.
#[test]
fn resnet_stems_pool_before_their_relu() {
    for name in ["resnet18", "resnet50"] {
        let Some((path, _)) = data(name) else {
            continue;
        };
        let net = onnx::load(&path).unwrap();
        let model = Model::compile(net.public(), EngineConfig::default()).unwrap();
        let stem: Vec<(String, usize)> = model.plan().steps[..4]
            .iter()
            .map(|s| {
                let kind = match s.kind {
                    StepKind::Linear { .. } => "linear",
                    StepKind::MaxPool { .. } => "maxpool",
                    StepKind::Relu { .. } => "relu",
                    _ => "other",
                };
                (format!("{kind} {}", s.name), s.len)
            })
            .collect();
        assert_eq!(
            stem,
            [
                ("linear /conv1/Conv".to_string(), 64 * 112 * 112),
                ("maxpool /maxpool/MaxPool.rows".to_string(), 64 * 112 * 56),
                ("maxpool /maxpool/MaxPool".to_string(), 64 * 56 * 56),
                ("relu /relu/Relu".to_string(), 64 * 56 * 56),
            ],
            "{name}"
        );
    }
}
