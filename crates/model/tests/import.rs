//! ONNX files exported by PyTorch (TorchScript exporter at opsets 13 to 17,
//! dynamo exporter at opsets 18 to 23; python/make_fixtures.py): imported,
//! evaluated by the f64 reference, and compared with the outputs PyTorch gave
//! at export time; and files that must be refused, with what the refusal says.

use std::collections::BTreeSet;
use std::path::Path;

use cryptmed_model::ir::Op;
use cryptmed_model::onnx::pb;
use cryptmed_model::{onnx, reference};
use prost::Message;

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
    assert!(checked >= 83, "only {checked} fixtures");
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

/// The fixtures with a PyTorch reference (a `.json` beside the `.onnx`), sorted.
fn reference_fixtures() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .map(|p| p.with_extension("onnx"))
        .collect();
    v.sort();
    v
}

fn ops(name: &str) -> Vec<&'static str> {
    onnx::load(&fixtures().join(name))
        .unwrap_or_else(|e| panic!("{e}"))
        .nodes
        .iter()
        .map(|n| n.op.name())
        .collect()
}

/// The audit as a test: every exporter and opset, and every ONNX operator the
/// importer claims, appears in at least one fixture that is checked against
/// PyTorch; each fixture's declared opset is the one in its file.
#[test]
fn fixtures_cover_every_opset_and_operator() {
    let mut seen_ops = BTreeSet::new();
    let mut seen_opsets = BTreeSet::new();
    for model in reference_fixtures() {
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(model.with_extension("json")).unwrap())
                .unwrap();
        let proto = pb::ModelProto::decode(std::fs::read(&model).unwrap().as_slice()).unwrap();
        let opset = proto
            .opset_import
            .iter()
            .find(|o| matches!(o.domain.as_deref(), None | Some("")))
            .and_then(|o| o.version)
            .unwrap();
        assert_eq!(
            spec["opset"].as_i64(),
            Some(opset),
            "{}: the sidecar's opset differs from the file's",
            model.display()
        );
        let exporter = spec["exporter"].as_str().unwrap().to_string();
        seen_opsets.insert((exporter, opset));
        for n in &proto.graph.as_ref().unwrap().node {
            seen_ops.insert(n.op_type.clone().unwrap());
        }
    }
    let mut missing: Vec<String> = Vec::new();
    for opset in 13..=17 {
        if !seen_opsets.contains(&("torchscript".to_string(), opset)) {
            missing.push(format!("TorchScript exporter at opset {opset}"));
        }
    }
    for opset in 18..=23 {
        if !seen_opsets.contains(&("dynamo".to_string(), opset)) {
            missing.push(format!("dynamo exporter at opset {opset}"));
        }
    }
    for op in [
        "Gemm",
        "MatMul",
        "Conv",
        "Relu",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "ReduceMean",
        "BatchNormalization",
        "Flatten",
        "Reshape",
        "Identity",
        "Dropout",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Sigmoid",
        "Tanh",
        "Softplus",
        "Elu",
        "Selu",
        "LeakyRelu",
        "Gelu",
        "Erf",
        "Pow",
        "Greater",
        "Less",
        "Where",
        "Softmax",
        "Constant",
        "Clip",
        "Concat",
        "Pad",
        "ConstantOfShape",
        "Slice",
        "Transpose",
    ] {
        if !seen_ops.contains(op) {
            missing.push(format!("operator {op}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not exercised by any fixture checked against PyTorch: {missing:?} (operators seen: {seen_ops:?})"
    );
}

#[test]
fn new_opsets_import_to_the_same_layers() {
    // The same model from every exporter and opset becomes the same layers.
    for base in [
        "mlp_relu",
        "mlp_softplus",
        "cnn_bn_pool_softmax",
        "residual",
        "mlp_gelu",
        "mlp_gelu_tanh",
    ] {
        let variants: Vec<_> = reference_fixtures()
            .into_iter()
            .filter(|p| {
                let stem = p.file_stem().unwrap().to_str().unwrap();
                stem.strip_prefix(base).is_some_and(|r| {
                    r.strip_prefix("_torchscript")
                        .or(r.strip_prefix("_dynamo"))
                        .is_some_and(|o| o.parse::<u32>().is_ok())
                })
            })
            .collect();
        assert!(variants.len() >= 3, "{base}: only {variants:?}");
        let first = ops(variants[0].file_name().unwrap().to_str().unwrap());
        for v in &variants[1..] {
            assert_eq!(
                ops(v.file_name().unwrap().to_str().unwrap()),
                first,
                "{} imports differently from {}",
                v.display(),
                variants[0].display()
            );
        }
    }
}

#[test]
fn batch_norm_that_cannot_fold_stays_an_affine_layer() {
    // On the record and after a ReLU: nothing before it to fold into.
    for f in [
        "bn_input_mlp_torchscript17.onnx",
        "bn_input_mlp_torchscript14.onnx",
        "bn_input_mlp_dynamo18.onnx",
    ] {
        assert_eq!(
            ops(f),
            ["affine", "dense", "relu", "affine", "dense"],
            "{f}"
        );
    }
    // After max pooling, before a padded strided convolution; overlapping pools.
    for f in [
        "bn_pool_cnn_torchscript17.onnx",
        "bn_pool_cnn_dynamo18.onnx",
        "bn_pool_cnn_dynamo20.onnx",
    ] {
        let net = onnx::load(&fixtures().join(f)).unwrap();
        let names: Vec<&str> = net.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(
            names,
            [
                "conv2d", "relu", "maxpool", "affine", "conv2d", "relu", "maxpool", "reshape",
                "dense"
            ],
            "{f}"
        );
        let pools: Vec<_> = net
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::MaxPool { geom } => Some((geom.kernel, geom.stride, geom.pads)),
                _ => None,
            })
            .collect();
        assert_eq!(
            pools,
            [([3, 3], [2, 2], [0; 4]), ([3, 3], [1, 1], [1; 4])],
            "{f}"
        );
        let convs: Vec<_> = net
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Conv2d { geom, .. } => Some((geom.stride, geom.pads)),
                _ => None,
            })
            .collect();
        assert_eq!(convs, [([2, 2], [1; 4]), ([2, 2], [1; 4])], "{f}");
    }
}

#[test]
fn matmul_add_and_constant_arithmetic_fold_into_dense_layers() {
    for f in [
        "matmul_add_torchscript17.onnx",
        "matmul_add_torchscript14.onnx",
        "matmul_add_dynamo18.onnx",
    ] {
        let net = onnx::load(&fixtures().join(f)).unwrap();
        let dense: Vec<bool> = net
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Dense { bias, .. } => Some(bias.is_some()),
                _ => None,
            })
            .collect();
        assert_eq!(dense, [true, true], "{f}: the Add must become the bias");
        assert_eq!(ops(f)[..3], ["dense", "relu", "dense"], "{f}");
    }
    // Sub/Mul/Add/Sub-from-constant on the record merge into one affine map; the
    // Div/Mul/Sub after the ReLU into another; the Div/Add after the last layer
    // into its weights.
    for f in [
        "const_arith_torchscript17.onnx",
        "const_arith_dynamo18.onnx",
        "const_arith_dynamo20.onnx",
    ] {
        assert_eq!(
            ops(f)[..5],
            ["affine", "dense", "relu", "affine", "dense"],
            "{f}"
        );
        assert!(!ops(f)[5..].contains(&"affine"), "{f}: {:?}", ops(f));
    }
}

#[test]
fn dropout_identity_and_less_where_import_as_pass_throughs_and_softplus() {
    for f in [
        "dropout_p0_torchscript17.onnx",
        "clone_identity_dynamo18noopt.onnx",
    ] {
        assert_eq!(ops(f), ["dense", "relu", "dense"], "{f}");
    }
    assert_eq!(
        ops("dropout_inserted_torchscript17.onnx"),
        ops("mlp_relu_torchscript17.onnx")
    );
    for f in [
        "softplus_less_torchscript17.onnx",
        "softplus_less_dynamo18.onnx",
        "softplus_less_dynamo20.onnx",
    ] {
        assert_eq!(ops(f), ["dense", "softplus", "dense"], "{f}");
    }
}

/// The one problem a refusal fixture must produce, with the words it must contain.
fn refused_with(file: &str, words: &[&str]) {
    let e = onnx::load(&fixtures().join(file)).expect_err(file);
    let msg = e.to_string();
    assert_eq!(e.problems.len(), 1, "{file}: {msg}");
    for w in words {
        assert!(msg.contains(w), "{file}: `{w}` missing from:\n{msg}");
    }
    assert!(msg.contains(file) && msg.contains("supported:"), "{msg}");
}

#[test]
fn refusals_name_node_operator_and_opset() {
    refused_with(
        "refuse_dynamic_shape.onnx",
        &[
            "node /0/Conv (Conv, opset 17)",
            "[batch, 1, height, width]",
            "cannot be resolved",
        ],
    );
    refused_with(
        "refuse_large_weight.onnx",
        &[
            "node /2/Gemm (Gemm, opset 17)",
            "weight 3000000",
            "fixed-point limit",
        ],
    );
    refused_with(
        "refuse_dropout_training.onnx",
        &[
            "node /2/Dropout (Dropout, opset 17)",
            "training_mode = true",
        ],
    );
    // Where as a threshold that is not softplus's own: refused, not silently softplus.
    refused_with(
        "refuse_where_identity_below.onnx",
        &["node /Where (Where, opset 17)", "softplus's threshold"],
    );
    refused_with(
        "refuse_where_low_threshold.onnx",
        &["node /Where (Where, opset 17)", "threshold [2.0]"],
    );
}

#[test]
fn a_refused_node_does_not_make_its_consumers_offenders() {
    // Sin feeds Add: only Sin and Cos are reported, not the Add after them.
    let e = onnx::load(&fixtures().join("refuse_sin_cos.onnx")).unwrap_err();
    assert!(e.problems.iter().all(|p| !p.contains("(Add,")), "{e}");
    // A refused Where feeds a Gemm whose width no longer matches: one problem only.
    let e = onnx::load(&fixtures().join("refuse_where_identity_below.onnx")).unwrap_err();
    assert!(e.problems.iter().all(|p| !p.contains("(Gemm,")), "{e}");
}

/// Keras `same` padding written with `F.pad`, from both exporters: each
/// `Pad` disappears into the pads of the convolution or pool that reads it
/// (bottom/right only; a zero pad before the max pool of a ReLU's output is
/// taken as padding that never wins; zeros before an average pool count in
/// its divisor), and the global average is over 7x7.
#[test]
fn pads_fold_into_the_following_convolution_or_pool() {
    for f in [
        "same_pad_pools_torchscript17.onnx",
        "same_pad_pools_dynamo18.onnx",
    ] {
        let net = onnx::load(&fixtures().join(f)).unwrap();
        let geoms: Vec<_> = net
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::MaxPool { geom } | Op::AvgPool { geom, .. } => {
                    Some((n.op.name(), geom.stride, geom.pads))
                }
                Op::Conv2d { geom, .. } => Some((n.op.name(), geom.stride, geom.pads)),
                _ => None,
            })
            .collect();
        assert_eq!(
            geoms,
            [
                ("maxpool", [2, 2], [0, 0, 1, 1]),
                ("conv2d", [2, 2], [0, 0, 1, 1]),
                ("maxpool", [1, 1], [1, 1, 1, 1]),
                ("avgpool", [1, 1], [1, 1, 1, 1]),
                ("avgpool", [1, 1], [1, 1, 1, 1]),
                ("avgpool", [1, 1], [0, 0, 2, 2]),
            ],
            "{f}"
        );
        let gap = net
            .nodes
            .iter()
            .position(|n| matches!(n.op, Op::GlobalAvgPool))
            .unwrap_or_else(|| panic!("{f}: no global average"));
        assert_eq!(net.shape_of(net.nodes[gap].inputs[0]), [4, 7, 7], "{f}");
        let counted: Vec<bool> = net
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::AvgPool {
                    count_include_pad, ..
                } => Some(count_include_pad),
                _ => None,
            })
            .collect();
        assert_eq!(counted, [true, false, true], "{f}");
    }
}
