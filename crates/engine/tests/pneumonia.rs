//! The real pneumonia classifier (Keras Xception at 150x150, converted by
//! `scripts/convert_pneumonia.py` into the git-ignored `data/`) on its 16
//! labelled chest X-rays, securely: the label equals the plaintext label on
//! every image, and the logits are within 1e-3 (relative to the largest
//! logit) of ONNX Runtime's on the same preprocessed input. Skipped, saying
//! so, when the files are absent (a fresh clone; the wheel states no license,
//! so nothing from it is committed).

use std::path::PathBuf;

use cryptmed_engine::local::run_local;
use cryptmed_engine::{EngineConfig, Model, Reveal};
use cryptmed_input as input;
use cryptmed_model::{onnx, reference};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn secure_diagnosis_of_sixteen_chest_xrays_matches_onnx_runtime() {
    let (model_file, refs) = (
        root().join("data/models/xception-pneumonia.onnx"),
        root().join("data/pneumonia/reference.json"),
    );
    if !model_file.is_file() || !refs.is_file() {
        eprintln!(
            "skipped: {} or {} is absent (run scripts/fetch_pneumonia.py and scripts/convert_pneumonia.py)",
            model_file.display(),
            refs.display()
        );
        return;
    }
    let net = onnx::load(&model_file).unwrap();
    let reference_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(refs).unwrap()).unwrap();
    let images = reference_json["images"].as_array().unwrap();
    assert_eq!(images.len(), 16);
    let mut records = Vec::new();
    for img in images {
        let stem = img["file"].as_str().unwrap().trim_end_matches(".jpeg");
        let path = root().join(format!("data/pneumonia/inputs/{stem}.npy"));
        let bytes = std::fs::read(&path).unwrap();
        let set = input::npy(&path.display().to_string(), &bytes, &net.input_shape).unwrap();
        records.extend(set.records);
    }
    let config = EngineConfig {
        reveal: Reveal::Logits,
        ..EngineConfig::default()
    };
    let model = Model::compile(net.clone(), config).unwrap();
    let public = Model::compile(net.public(), config).unwrap();
    let run = run_local(&model, &public, &records, 4).unwrap();
    let mut correct = 0;
    for ((img, x), p) in images.iter().zip(&records).zip(&run.predictions) {
        let ort: Vec<f64> = img["onnxruntime_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let plain = reference::evaluate(&net, x);
        let got = p.logits.as_ref().unwrap();
        let largest = ort.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&ort)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        let file = img["file"].as_str().unwrap();
        assert!(
            err <= 1e-3 * largest,
            "{file}: secure {got:?}, ONNX Runtime {ort:?}"
        );
        assert_eq!(
            p.label,
            reference::label(&net, &plain),
            "{file}: secure vs plaintext label"
        );
        correct += usize::from(p.label as u64 == img["label"].as_u64().unwrap());
    }
    eprintln!("secure accuracy on the 16 X-rays: {correct}/16");
}
