//! ONNX files exported by PyTorch (TorchScript exporter at opsets 13 and 17,
//! dynamo exporter at opset 18): imported, evaluated by the f64 reference,
//! and compared with the outputs PyTorch gave at export time.

use std::path::Path;

use cryptmed_model::{onnx, reference};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn every_exported_model_matches_pytorch() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let model = path.with_extension("onnx");
        let net = match onnx::load(&model) {
            Ok(n) => n,
            Err(e) => {
                failures.push(format!("{e}"));
                continue;
            }
        };
        for (x, y) in spec["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(spec["outputs"].as_array().unwrap())
        {
            let x: Vec<f64> = x
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let want: Vec<f64> = y
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let got = reference::evaluate(&net, &x);
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0.0, f64::max);
            if got.len() != want.len() || err > 1e-4 {
                failures.push(format!(
                    "{}: output {got:?}, PyTorch {want:?}",
                    model.display()
                ));
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        checked + failures.len(),
        failures.join("\n\n")
    );
    assert!(checked >= 28, "only {checked} fixtures");
}

#[test]
fn patterns_become_single_operators() {
    let ops = |name: &str| -> Vec<&'static str> {
        onnx::load(&fixtures().join(name))
            .unwrap()
            .nodes
            .iter()
            .map(|n| n.op.name())
            .collect()
    };
    // Sub and Div merge into one affine (the engine folds it into the first dense layer);
    // batch norm folds into its dense layer; GELU (erf form, decomposed before opset 20) is one node.
    assert_eq!(
        ops("mlp_gelu_torchscript17.onnx"),
        ["affine", "dense", "gelu", "dense", "gelu", "dense"]
    );
    assert_eq!(
        ops("mlp_silu_torchscript17.onnx"),
        ["affine", "dense", "silu", "dense", "silu", "dense"]
    );
    assert!(
        ops("cnn_bn_pool_softmax_torchscript17.onnx").starts_with(&["conv2d", "relu", "maxpool"])
    );
}

#[test]
fn refusals_list_every_offending_node() {
    let e = onnx::load(&fixtures().join("refuse_sin_cos.onnx")).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.problems.len(), 2, "{msg}");
    assert!(
        msg.contains("(Sin, opset 17)")
            && msg.contains("(Cos, opset 17)")
            && msg.contains("supported:"),
        "{msg}"
    );
    for bad in ["refuse_truncated.onnx", "refuse_random.onnx"] {
        let msg = onnx::load(&fixtures().join(bad)).unwrap_err().to_string();
        assert!(msg.contains(bad), "{msg}");
    }
    let msg = onnx::load(&fixtures().join("does_not_exist.onnx"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("cannot read"), "{msg}");
}

#[test]
fn gelu_tanh_from_both_exporters_is_one_operator() {
    for f in [
        "mlp_gelu_tanh_torchscript17.onnx",
        "mlp_gelu_tanh_dynamo18.onnx",
        "mlp_gelu_dynamo18.onnx",
        "mlp_softplus_dynamo18.onnx",
        "mlp_silu_dynamo18.onnx",
    ] {
        let net = onnx::load(&fixtures().join(f)).unwrap();
        let ops: Vec<&str> = net.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(ops.len(), 6, "{f}: {ops:?}");
        assert!(!ops.contains(&"mul"), "{f}: {ops:?}");
    }
}
