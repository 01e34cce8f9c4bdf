//! Crafted ONNX models, built here with the prost types. Malformed ones:
//! each is refused at load time (never a panic, never a failure at run time)
//! with the one message that lists every offending node by name, operator
//! and opset. And forms PyTorch does not export: `Clip` and `Pad` with
//! attributes (before opset 11), infinite clip bounds, a zero `Pad` before
//! the max pool of a ReLU.

use cryptmed_model::onnx::{self, ImportError, pb};
use prost::Message;

fn tensor(name: &str, dims: &[i64], vals: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        dims: dims.to_vec(),
        data_type: Some(pb::tensor_proto::DataType::Float as i32),
        name: Some(name.into()),
        float_data: vals.to_vec(),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(pb::attribute_proto::AttributeType::Ints as i32),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        r#type: Some(pb::attribute_proto::AttributeType::Int as i32),
        ..Default::default()
    }
}

fn node(
    op: &str,
    ins: &[&str],
    out: &str,
    name: &str,
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        name: Some(name.into()),
        op_type: Some(op.into()),
        attribute: attrs,
        ..Default::default()
    }
}

fn value(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension};
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(dimension::Value::DimValue(*d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model reading `x` of `input` (batch axis first) and producing `y`, at opset 17.
fn model(nodes: Vec<pb::NodeProto>, inits: Vec<pb::TensorProto>, input: &[i64]) -> Vec<u8> {
    model_at(17, nodes, inits, input)
}

/// [`model`] at `opset`.
fn model_at(
    opset: i64,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    input: &[i64],
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: Some(8),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            name: Some("g".into()),
            initializer: inits,
            input: vec![value("x", input)],
            output: vec![value("y", &[1])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn refuse(bytes: &[u8]) -> ImportError {
    onnx::load_bytes(bytes, "crafted").expect_err("the model must be refused")
}

/// Refused with exactly one problem naming `node (op, opset 17)` and containing `want`.
fn refused_once(bytes: &[u8], node: &str, op: &str, want: &str) {
    let e = refuse(bytes);
    let msg = e.to_string();
    assert_eq!(e.problems.len(), 1, "{msg}");
    assert!(
        e.problems[0].starts_with(&format!("node {node} ({op}, opset 17): "))
            && e.problems[0].contains(want),
        "{msg}"
    );
    assert!(
        msg.starts_with("cannot import crafted:") && msg.contains("supported:"),
        "{msg}"
    );
}

fn conv_w() -> pb::TensorProto {
    tensor("w", &[2, 1, 3, 3], &[0.1; 18])
}

#[test]
fn bad_convolution_and_pooling_hyper_parameters_are_refused() {
    let conv = |attrs, inits, input: &[i64]| {
        model(
            vec![node("Conv", &["x", "w"], "y", "c0", attrs)],
            inits,
            input,
        )
    };
    let x = [1, 1, 8, 8];
    refused_once(
        &conv(vec![ints("strides", &[0, 0])], vec![conv_w()], &x),
        "c0",
        "Conv",
        "stride 0 along the height",
    );
    refused_once(
        &conv(vec![ints("pads", &[-5, -5, -5, -5])], vec![conv_w()], &x),
        "c0",
        "Conv",
        "negative pads [-5, -5, -5, -5]",
    );
    refused_once(
        &conv(vec![ints("dilations", &[0, 1])], vec![conv_w()], &x),
        "c0",
        "Conv",
        "dilation 0 along the height",
    );
    refused_once(
        &conv(vec![int("group", -3)], vec![conv_w()], &x),
        "c0",
        "Conv",
        "group -3 (at least 1)",
    );
    refused_once(
        &conv(vec![ints("strides", &[1, 1, 1])], vec![conv_w()], &x),
        "c0",
        "Conv",
        "strides of 3 values (2 expected",
    );
    // A kernel larger than the input: refused at load time, not at run time.
    refused_once(
        &conv(vec![], vec![conv_w()], &[1, 1, 2, 2]),
        "c0",
        "Conv",
        "the kernel of 3 (spanning 3 with dilation 1) does not fit the height of 2",
    );
    // A bias of the wrong length.
    refused_once(
        &model(
            vec![node("Conv", &["x", "w", "b"], "y", "c0", vec![])],
            vec![conv_w(), tensor("b", &[5], &[0.1; 5])],
            &x,
        ),
        "c0",
        "Conv",
        "bias of 5 values for 2 outputs",
    );
    let pool = |op: &str, attrs| model(vec![node(op, &["x"], "y", "p", attrs)], vec![], &x);
    for op in ["MaxPool", "AveragePool"] {
        refused_once(
            &pool(
                op,
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[0, 0])],
            ),
            "p",
            op,
            "stride 0 along the height",
        );
        refused_once(
            &pool(op, vec![ints("kernel_shape", &[0, 0])]),
            "p",
            op,
            "kernel 0 along the height",
        );
        refused_once(
            &pool(op, vec![ints("kernel_shape", &[2, -2])]),
            "p",
            op,
            "negative kernel_shape [2, -2]",
        );
        refused_once(
            &pool(op, vec![ints("kernel_shape", &[40000, 40000])]),
            "p",
            op,
            "the kernel of 40000",
        );
        refused_once(
            &pool(
                op,
                vec![ints("kernel_shape", &[2, 2]), ints("pads", &[2, 0, 0, 0])],
            ),
            "p",
            op,
            "must be smaller than the 2x2 window",
        );
    }
}

#[test]
fn bad_weights_and_constants_are_refused() {
    let gemm = |w: pb::TensorProto, extra: Vec<pb::TensorProto>, ins: &[&str]| {
        let mut inits = vec![w];
        inits.extend(extra);
        model(
            vec![node("Gemm", ins, "y", "gm", vec![int("transB", 1)])],
            inits,
            &[1, 4],
        )
    };
    refused_once(
        &gemm(tensor("w", &[], &[1.0]), vec![], &["x", "w"]),
        "gm",
        "Gemm",
        "weights of shape [] (rank 2 expected)",
    );
    refused_once(
        &gemm(tensor("w", &[4, 2, 2], &[0.1; 16]), vec![], &["x", "w"]),
        "gm",
        "Gemm",
        "weights of shape [4, 2, 2] (rank 2 expected)",
    );
    refused_once(
        &gemm(
            tensor("w", &[2, 4], &[0.1; 8]),
            vec![tensor("b", &[3], &[0.1; 3])],
            &["x", "w", "b"],
        ),
        "gm",
        "Gemm",
        "bias of 3 values for 2 outputs",
    );
    // Negative and overflowing tensor dimensions.
    let e = refuse(&gemm(tensor("w", &[-2, 4], &[]), vec![], &["x", "w"]));
    assert!(
        e.problems[0].contains("tensor w has negative dimensions [-2, 4]"),
        "{e}"
    );
    let e = refuse(&gemm(
        tensor("w", &[1 << 40, 1 << 40], &[]),
        vec![],
        &["x", "w"],
    ));
    assert!(
        e.problems[0].contains("tensor w has too many elements"),
        "{e}"
    );
    // Gather from an empty constant, and past its end.
    for (table, idx, want) in [
        (vec![], 0.0, "index 0 outside a constant of 0 values"),
        (
            vec![1.0, 2.0],
            5.0,
            "index 5 outside a constant of 2 values",
        ),
        (
            vec![1.0, 2.0],
            -3.0,
            "index -3 outside a constant of 2 values",
        ),
    ] {
        let bytes = model(
            vec![
                node("Gather", &["e", "i"], "g", "ga", vec![]),
                node("Reshape", &["x", "g"], "y", "r", vec![]),
            ],
            vec![
                tensor("e", &[table.len() as i64], &table),
                tensor("i", &[1], &[idx]),
            ],
            &[1, 4],
        );
        // Only the Gather is reported: the Reshape reading it is not blamed too.
        refused_once(&bytes, "ga", "Gather", want);
    }
    // Batch norm parameters of the wrong length are refused, not truncated.
    let bn = model(
        vec![node(
            "BatchNormalization",
            &["x", "g", "b", "m", "v"],
            "y",
            "bn",
            vec![],
        )],
        ["g", "b", "m", "v"]
            .iter()
            .map(|n| tensor(n, &[2], &[1.0, 1.0]))
            .collect(),
        &[1, 4],
    );
    refused_once(
        &bn,
        "bn",
        "BatchNormalization",
        "scale, bias, mean and variance of [2, 2, 2, 2] values for 4 channels",
    );
    // A reshape target that cannot hold the values.
    let t = pb::TensorProto {
        dims: vec![2],
        data_type: Some(pb::tensor_proto::DataType::Int64 as i32),
        name: Some("t".into()),
        int64_data: vec![1, -2],
        ..Default::default()
    };
    refused_once(
        &model(
            vec![node("Reshape", &["x", "t"], "y", "r", vec![])],
            vec![t],
            &[1, 4],
        ),
        "r",
        "Reshape",
        "target shape [1, -2] does not hold 4 values",
    );
}

#[test]
fn readers_of_a_refused_node_are_not_blamed_too() {
    // A refused pooling, then Shape, Identity, Relu and Reshape reading it: one problem.
    let bytes = model(
        vec![
            node(
                "MaxPool",
                &["x"],
                "p",
                "pool",
                vec![ints("kernel_shape", &[0, 0])],
            ),
            node("Shape", &["p"], "s", "shape", vec![]),
            node("Identity", &["p"], "i", "id", vec![]),
            node("Relu", &["i"], "r", "relu", vec![]),
            node("Reshape", &["r", "s"], "y", "reshape", vec![]),
        ],
        vec![],
        &[1, 1, 8, 8],
    );
    refused_once(&bytes, "pool", "MaxPool", "kernel 0 along the height");
}

#[test]
fn record_dependent_products_need_the_same_shape() {
    let bytes = model(
        vec![
            node("Gemm", &["x", "w"], "h", "gm", vec![int("transB", 1)]),
            node("Mul", &["x", "h"], "y", "m", vec![]),
        ],
        vec![tensor("w", &[2, 4], &[0.1; 8])],
        &[1, 4],
    );
    refused_once(&bytes, "m", "Mul", "element-wise mul of shapes [4] and [2]");
}

#[test]
fn an_oversized_input_is_refused_before_any_node() {
    let bytes = model(
        vec![node("Relu", &["x"], "y", "r", vec![])],
        vec![],
        &[1, 1, 40000, 40000],
    );
    let e = refuse(&bytes);
    assert_eq!(e.problems.len(), 1, "{e}");
    assert!(
        e.problems[0].contains("input x: its shape [1, 40000, 40000] has 1600000000 elements"),
        "{e}"
    );
}

#[test]
fn one_message_lists_every_offending_node_of_every_kind() {
    // An unsupported operator, a stride-0 pooling, a bad bias and a
    // mismatched product in one model: four problems, one message.
    let bytes = model(
        vec![
            node("Sin", &["x"], "s", "sin", vec![]),
            node(
                "MaxPool",
                &["x"],
                "p",
                "pool",
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[0, 0])],
            ),
            node("Conv", &["x", "w", "b"], "c", "conv", vec![]),
            node("Flatten", &["x"], "f", "flat", vec![]),
            node("Gemm", &["f", "w2"], "h", "gm", vec![int("transB", 1)]),
            node("Mul", &["f", "h"], "y", "mul", vec![]),
        ],
        vec![
            conv_w(),
            tensor("b", &[7], &[0.0; 7]),
            tensor("w2", &[3, 64], &[0.01; 192]),
        ],
        &[1, 1, 8, 8],
    );
    let e = refuse(&bytes);
    let msg = e.to_string();
    assert_eq!(e.problems.len(), 4, "{msg}");
    for part in [
        "node sin (Sin, opset 17): unsupported operator",
        "node pool (MaxPool, opset 17): stride 0",
        "node conv (Conv, opset 17): bias of 7 values for 2 outputs",
        "node mul (Mul, opset 17): element-wise mul of shapes [64] and [3]",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
}

#[test]
fn arbitrary_bytes_never_panic_the_importer() {
    // Random mutations of a valid model: each is imported or refused, never a panic.
    let good = model(
        vec![
            node(
                "Conv",
                &["x", "w"],
                "c",
                "c0",
                vec![ints("pads", &[1, 1, 1, 1])],
            ),
            node(
                "MaxPool",
                &["c"],
                "p",
                "p0",
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            ),
            node("Flatten", &["p"], "f", "f0", vec![]),
            node("Gemm", &["f", "w2"], "y", "g0", vec![int("transB", 1)]),
        ],
        vec![conv_w(), tensor("w2", &[2, 32], &[0.01; 64])],
        &[1, 1, 8, 8],
    );
    onnx::load_bytes(&good, "good").unwrap();
    let mut s = 0x1234_5678_u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..2000 {
        let mut b = good.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % b.len();
            b[i] = match next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => b[i] ^ (1 << (next() % 8)),
                _ => next() as u8,
            };
        }
        match onnx::load_bytes(&b, "mutated") {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.problems.is_empty());
                refused += 1;
            }
        }
    }
    assert!(refused > 0 && ok + refused == 2000, "{ok} {refused}");
}

fn int64s(name: &str, vals: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        dims: vec![vals.len() as i64],
        data_type: Some(pb::tensor_proto::DataType::Int64 as i32),
        name: Some(name.into()),
        int64_data: vals.to_vec(),
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(pb::attribute_proto::AttributeType::String as i32),
        ..Default::default()
    }
}

/// `Pad` (NCHW pads `pads`, constant `value`, extra attributes) of the input,
/// read by `reader` (with its own attributes and initializers).
fn padded(
    pads: &[i64],
    value: f32,
    attrs: Vec<pb::AttributeProto>,
    reader: pb::NodeProto,
    mut inits: Vec<pb::TensorProto>,
    input: &[i64],
) -> Vec<u8> {
    inits.extend([int64s("pads", pads), tensor("v", &[], &[value])]);
    model(
        vec![node("Pad", &["x", "pads", "v"], "xp", "pad", attrs), reader],
        inits,
        input,
    )
}

/// Only a constant spatial `Pad` right before a convolution or a pool folds
/// into it; zeros before a max pool only when the value is a ReLU's output.
#[test]
fn pads_that_cannot_fold_are_refused_by_name() {
    let x = [1, 1, 8, 8];
    let hw = [0, 0, 0, 1, 0, 0, 0, 1];
    let pool = |op: &str, attrs| node(op, &["xp"], "y", "p", attrs);
    let k3 = || vec![ints("kernel_shape", &[3, 3])];
    let conv = || node("Conv", &["xp", "w"], "y", "c0", vec![]);
    let relu = || node("Relu", &["xp"], "y", "r0", vec![]);
    let cases: Vec<(Vec<u8>, &str, &str, &str)> = vec![
        (
            padded(
                &hw,
                0.0,
                vec![string("mode", "reflect")],
                conv(),
                vec![conv_w()],
                &x,
            ),
            "pad",
            "Pad",
            "Pad mode \"reflect\" (only constant)",
        ),
        (
            padded(
                &[0, 1, 0, 0, 0, 0, 0, 0],
                0.0,
                vec![],
                conv(),
                vec![conv_w()],
                &x,
            ),
            "pad",
            "Pad",
            "only non-negative padding of height and width",
        ),
        (
            padded(
                &[0, 0, -1, 0, 0, 0, 0, 0],
                0.0,
                vec![],
                conv(),
                vec![conv_w()],
                &x,
            ),
            "pad",
            "Pad",
            "only non-negative padding of height and width",
        ),
        (
            padded(&hw, 1.0, vec![], conv(), vec![conv_w()], &x),
            "c0",
            "Conv",
            "a Pad with value 1 before Conv (zeros only)",
        ),
        (
            padded(&hw, 0.0, vec![], relu(), vec![], &x),
            "r0",
            "Relu",
            "constant padding is supported only right before Conv, MaxPool or AveragePool",
        ),
        (
            padded(&hw, 0.0, vec![], pool("MaxPool", k3()), vec![], &x),
            "p",
            "MaxPool",
            "a Pad with zeros before MaxPool of a value that may be negative",
        ),
        (
            padded(&hw, -5.0, vec![], pool("MaxPool", k3()), vec![], &x),
            "p",
            "MaxPool",
            "pad with -inf",
        ),
        (
            padded(&hw, 2.0, vec![], pool("AveragePool", k3()), vec![], &x),
            "p",
            "AveragePool",
            "a Pad with value 2 before AveragePool (zeros only)",
        ),
        (
            padded(
                &hw,
                0.0,
                vec![],
                pool(
                    "AveragePool",
                    vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1; 4])],
                ),
                vec![],
                &x,
            ),
            "p",
            "AveragePool",
            "pads itself without counting its padding",
        ),
        (
            // Folded, the padding would fill a whole window.
            padded(
                &[0, 0, 0, 0, 0, 0, 3, 3],
                f32::NEG_INFINITY,
                vec![],
                pool("MaxPool", k3()),
                vec![],
                &x,
            ),
            "p",
            "MaxPool",
            "must be smaller than the 3x3 window",
        ),
    ];
    for (bytes, name, op, want) in cases {
        refused_once(&bytes, name, op, want);
    }
    // Pads computed from the record are not constant.
    let dynamic = model(
        vec![node("Pad", &["x", "x"], "xp", "pad", vec![]), conv()],
        vec![conv_w()],
        &x,
    );
    refused_once(&dynamic, "pad", "Pad", "the pads must be constant");
}

/// A zero `Pad` before the max pool of a ReLU's output folds (a padded zero
/// never beats a ReLU's output), and the pool's window sees only the input.
#[test]
fn zero_pad_before_the_max_pool_of_a_relu_folds() {
    let bytes = model(
        vec![
            node("Relu", &["x"], "r", "r0", vec![]),
            node("Pad", &["r", "pads", "v"], "xp", "pad", vec![]),
            node(
                "MaxPool",
                &["xp"],
                "y",
                "p",
                vec![ints("kernel_shape", &[3, 3])],
            ),
        ],
        vec![
            int64s("pads", &[0, 0, 1, 0, 0, 0, 1, 2]),
            tensor("v", &[], &[0.0]),
        ],
        &[1, 1, 8, 8],
    );
    let net = onnx::load_bytes(&bytes, "crafted").unwrap();
    let pads: Vec<_> = net
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            cryptmed_model::Op::MaxPool { geom } => Some(geom.pads),
            _ => None,
        })
        .collect();
    assert_eq!(pads, [[1, 0, 1, 2]]);
}

fn float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        f: Some(v),
        r#type: Some(pb::attribute_proto::AttributeType::Float as i32),
        ..Default::default()
    }
}

/// The bounds of the one clip in `bytes`.
fn clip_bounds(bytes: &[u8]) -> (Option<f64>, Option<f64>) {
    let net = onnx::load_bytes(bytes, "crafted").unwrap_or_else(|e| panic!("{e}"));
    let clips: Vec<_> = net
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            cryptmed_model::Op::Act(cryptmed_model::Activation::Clip { min, max }) => {
                Some((min, max))
            }
            _ => None,
        })
        .collect();
    assert_eq!(clips.len(), 1, "{:?}", net.nodes);
    clips[0]
}

/// `Clip` bounds as attributes before opset 11 and as optional constant
/// inputs since; an infinite bound on its own side is no bound, one on the
/// other side (or NaN) is refused.
#[test]
fn clip_bounds_from_attributes_and_inputs() {
    let x = [1, 4];
    let old = |attrs| model_at(10, vec![node("Clip", &["x"], "y", "c", attrs)], vec![], &x);
    assert_eq!(
        clip_bounds(&old(vec![float("min", -1.5), float("max", 2.0)])),
        (Some(-1.5), Some(2.0))
    );
    assert_eq!(
        clip_bounds(&old(vec![float("max", 6.0)])),
        (None, Some(6.0))
    );
    assert_eq!(clip_bounds(&old(vec![])), (None, None));
    let new = |ins: &[&str], lo: f32, hi: f32| {
        model(
            vec![node("Clip", ins, "y", "c", vec![])],
            vec![tensor("lo", &[], &[lo]), tensor("hi", &[], &[hi])],
            &x,
        )
    };
    assert_eq!(
        clip_bounds(&new(&["x", "lo", "hi"], 0.0, 6.0)),
        (Some(0.0), Some(6.0))
    );
    assert_eq!(
        clip_bounds(&new(&["x", "", "hi"], 0.0, 6.0)),
        (None, Some(6.0))
    );
    assert_eq!(
        clip_bounds(&new(&["x", "lo"], -0.5, 0.0)),
        (Some(-0.5), None)
    );
    assert_eq!(
        clip_bounds(&new(&["x", "lo", "hi"], f32::NEG_INFINITY, f32::INFINITY)),
        (None, None)
    );
    for (lo, hi, want) in [
        (f32::INFINITY, 1.0, "clip min inf is not finite"),
        (0.0, f32::NEG_INFINITY, "clip max -inf is not finite"),
        (f32::NAN, 1.0, "clip min NaN is not finite"),
        (2.0, 1.0, "clip bounds 2 > 1"),
    ] {
        refused_once(&new(&["x", "lo", "hi"], lo, hi), "c", "Clip", want);
    }
}

/// Before opset 11 a `Pad`'s pads and value are attributes; they fold the same way.
#[test]
fn pad_attributes_before_opset_11_fold_too() {
    let pad = |value: f32| {
        model_at(
            10,
            vec![
                node(
                    "Pad",
                    &["x"],
                    "xp",
                    "pad",
                    vec![
                        ints("pads", &[0, 0, 0, 0, 0, 0, 1, 1]),
                        float("value", value),
                    ],
                ),
                node("Conv", &["xp", "w"], "y", "c0", vec![]),
            ],
            vec![conv_w()],
            &[1, 1, 8, 8],
        )
    };
    let net = onnx::load_bytes(&pad(0.0), "crafted").unwrap_or_else(|e| panic!("{e}"));
    let pads: Vec<_> = net
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            cryptmed_model::Op::Conv2d { geom, .. } => Some(geom.pads),
            _ => None,
        })
        .collect();
    assert_eq!(pads, [[0, 0, 1, 1]]);
    let e = refuse(&pad(0.5)).to_string();
    assert!(
        e.contains("node c0 (Conv, opset 10): a Pad with value 0.5 before Conv (zeros only)"),
        "{e}"
    );
}
