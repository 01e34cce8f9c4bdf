//! Network validation: each kind of problem, found with adversarial values
//! (0, huge, `usize::MAX`, NaN, mismatched lengths), every problem listed by
//! node, the size limits refused before anything is allocated, and a fuzz
//! that runs the reference evaluator on every random network validation
//! accepts (it must never panic or mis-size).

use cryptmed_model::ir::{Activation, Network, Node, Op, Tensor};
use cryptmed_model::validate::{
    InvalidNetwork, MAX_MACS, MAX_NODES, MAX_PLAN_ELEMENTS, MAX_TOTAL_WEIGHTS, MAX_VALUE_ELEMENTS,
    SHOWN_PROBLEMS,
};
use cryptmed_model::{reference, validate, zoo};
use cryptmed_ring::kernels::{Conv2dGeom, Pool2dGeom};

fn net(input: &[usize], nodes: Vec<Node>) -> Network {
    Network {
        name: "test".into(),
        input_shape: input.to_vec(),
        nodes,
        class_names: None,
        schema: None,
        preprocessing: None,
    }
}

fn node(name: &str, op: Op, inputs: Vec<usize>, shape: &[usize]) -> Node {
    Node {
        name: name.into(),
        op,
        inputs,
        shape: shape.to_vec(),
    }
}

fn dense(rows: usize, cols: usize) -> Op {
    Op::Dense {
        weight: Tensor::new(vec![rows, cols], vec![0.5; rows * cols]).unwrap(),
        bias: Some(vec![0.1; rows]),
    }
}

/// A 1x8x8 input, 2 output channels, 3x3 kernel, stride 1, no padding -> [2, 6, 6].
fn conv_geom() -> Conv2dGeom {
    Conv2dGeom {
        in_ch: 1,
        in_h: 8,
        in_w: 8,
        out_ch: 2,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [0; 4],
        dilation: [1, 1],
        groups: 1,
    }
}

fn conv(geom: Conv2dGeom) -> Op {
    let wshape = vec![
        geom.out_ch,
        geom.in_ch / geom.groups.max(1),
        geom.kernel[0],
        geom.kernel[1],
    ];
    let n = wshape.iter().product();
    Op::Conv2d {
        geom,
        weight: Tensor {
            shape: wshape,
            data: vec![0.1; n],
        },
        bias: Some(vec![0.0; geom.out_ch]),
    }
}

fn pool_geom() -> Pool2dGeom {
    Pool2dGeom {
        ch: 1,
        in_h: 8,
        in_w: 8,
        kernel: [2, 2],
        stride: [2, 2],
        pads: [0; 4],
    }
}

/// The problems of `n`, which must be invalid.
fn problems(n: &Network) -> Vec<String> {
    let e: InvalidNetwork = validate(n).expect_err("the network must be refused");
    assert_eq!(e.network, n.name);
    e.problems.iter().map(ToString::to_string).collect()
}

/// `n` is refused with exactly one problem, which names node `name` and contains every part.
fn refused(n: &Network, name: &str, parts: &[&str]) {
    let p = problems(n);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with(&format!("node {name} (")), "{p:?}");
    for part in parts {
        assert!(p[0].contains(part), "{:?} lacks {part:?}", p[0]);
    }
}

#[test]
fn benchmark_networks_and_their_public_forms_are_valid() {
    for name in zoo::NAMES {
        let n = zoo::build(name, 7).unwrap();
        validate(&n).unwrap_or_else(|e| panic!("{name}: {e}"));
        n.public()
            .validate()
            .unwrap_or_else(|e| panic!("{name} public: {e}"));
    }
    let mlp = zoo::medical_mlp(30, 2, Activation::GeluErf, 1);
    validate(&mlp).unwrap();
}

#[test]
fn value_ids_must_name_earlier_values_with_the_right_arity() {
    let ok = || {
        vec![
            node("fc", dense(4, 8), vec![0], &[4]),
            node("relu", Op::Act(Activation::Relu), vec![1], &[4]),
        ]
    };
    validate(&net(&[8], ok())).unwrap();
    // A dangling id, the node's own output, and a later node's output.
    for bad in [99, 2, usize::MAX] {
        let mut nodes = ok();
        nodes[1].inputs = vec![bad];
        refused(
            &net(&[8], nodes),
            "relu",
            &[&format!(
                "reads value {bad}, which is not computed before it"
            )],
        );
    }
    // Arity: Add reads two, Relu one; none at all.
    let mut nodes = ok();
    nodes.push(node("add", Op::Add, vec![2], &[4]));
    refused(
        &net(&[8], nodes),
        "add",
        &["reads 1 values; add reads exactly 2"],
    );
    let mut nodes = ok();
    nodes[1].inputs = vec![1, 1];
    refused(&net(&[8], nodes), "relu", &["reads exactly 1"]);
    let mut nodes = ok();
    nodes[1].inputs.clear();
    refused(&net(&[8], nodes), "relu", &["reads 0 values"]);
}

#[test]
fn shapes_need_a_rank_no_zero_dimension_and_a_bounded_size() {
    let relu = |shape: &[usize]| node("r", Op::Act(Activation::Relu), vec![0], shape);
    for (shape, want) in [
        (vec![], "has rank 0"),
        (vec![1; 9], "has rank 9"),
        (vec![4, 0], "has a zero dimension"),
        (vec![MAX_VALUE_ELEMENTS + 1], "above the limit of 16777216"),
        (vec![usize::MAX, 2], "more elements than the limit"),
        (vec![1 << 32, 1 << 32], "more elements than the limit"),
    ] {
        // As the input's shape: a network-wide problem, and the node is not checked against it.
        let p = problems(&net(&shape, vec![relu(&[4])]));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("the input shape") && p[0].contains(want),
            "{p:?}"
        );
        // As a node's output shape.
        let p = problems(&net(&[4], vec![relu(&shape)]));
        assert!(p.iter().any(|m| m.contains(want)), "{shape:?}: {p:?}");
    }
    // Element-wise operators keep the shape; reshape keeps the size.
    refused(
        &net(&[2, 3], vec![relu(&[3, 2])]),
        "r",
        &["differs from its input's [2, 3]"],
    );
    validate(&net(&[2, 3], vec![node("f", Op::Reshape, vec![0], &[6])])).unwrap();
    refused(
        &net(&[2, 3], vec![node("f", Op::Reshape, vec![0], &[7])]),
        "f",
        &["(7 elements) for an input of shape [2, 3] (6 elements)"],
    );
    assert!(
        problems(&net(&[4], vec![]))
            .iter()
            .any(|p| p.contains("no nodes"))
    );
}

#[test]
fn binary_operators_need_values_of_the_same_size() {
    let nodes = |op: Op, out: &[usize]| {
        vec![
            node("fc", dense(2, 4), vec![0], &[2]),
            node("bin", op, vec![0, 1], out),
        ]
    };
    for op in [Op::Add, Op::Mul] {
        refused(
            &net(&[4], nodes(op.clone(), &[4])),
            "bin",
            &["of shapes [4] and [2] into [4]"],
        );
    }
    let ok = vec![
        node("fc", dense(4, 4), vec![0], &[4]),
        node("bin", Op::Mul, vec![0, 1], &[4]),
    ];
    validate(&net(&[4], ok)).unwrap();
}

#[test]
fn dense_weights_and_biases_must_fit_the_layer() {
    let one = |op: Op| net(&[8], vec![node("fc", op, vec![0], &[4])]);
    validate(&one(dense(4, 8))).unwrap();
    // Rank 3, transposed, wrong input width.
    let rank3 = Op::Dense {
        weight: Tensor::new(vec![4, 2, 4], vec![0.0; 32]).unwrap(),
        bias: None,
    };
    refused(&one(rank3), "fc", &["weights of shape [4, 2, 4]"]);
    refused(&one(dense(8, 4)), "fc", &["map 4 inputs to 8 outputs"]);
    // Data that does not fill the shape (built past Tensor::new, as a peer's JSON can).
    let short = Op::Dense {
        weight: Tensor {
            shape: vec![4, 8],
            data: vec![0.0; 31],
        },
        bias: None,
    };
    refused(
        &one(short),
        "fc",
        &["weights hold 31 values for shape [4, 8]"],
    );
    for (bias, want) in [
        (vec![0.0; 3], "bias of 3 values for 4 outputs"),
        (vec![0.0; 5], "bias of 5 values for 4 outputs"),
        // An empty bias is a public network's, never beside real weights.
        (vec![], "bias of 0 values for 4 outputs"),
        (vec![0.0, f64::NAN, 0.0, 0.0], "bias 1 is NaN"),
    ] {
        let op = Op::Dense {
            weight: Tensor::new(vec![4, 8], vec![0.0; 32]).unwrap(),
            bias: Some(bias),
        };
        refused(&one(op), "fc", &[want]);
    }
    let inf = Op::Dense {
        weight: Tensor::new(vec![4, 8], {
            let mut w = vec![0.0; 32];
            w[7] = f64::INFINITY;
            w
        })
        .unwrap(),
        bias: None,
    };
    refused(&one(inf), "fc", &["weight 7 is inf"]);
    // The public form: no weights, an empty bias.
    validate(&one(dense(4, 8)).public()).unwrap();
}

#[test]
fn convolution_geometry_is_checked_with_adversarial_values() {
    let one = |op: Op, out: &[usize]| net(&[1, 8, 8], vec![node("c", op, vec![0], out)]);
    validate(&one(conv(conv_geom()), &[2, 6, 6])).unwrap();
    let g = conv_geom();
    let cases: Vec<(Conv2dGeom, &[usize], &str)> = vec![
        (
            Conv2dGeom {
                stride: [0, 1],
                ..g
            },
            &[2, 6, 6],
            "stride 0 along the height",
        ),
        (
            Conv2dGeom {
                dilation: [1, 0],
                ..g
            },
            &[2, 6, 6],
            "dilation 0 along the width",
        ),
        (
            Conv2dGeom {
                kernel: [0, 3],
                ..g
            },
            &[2, 6, 6],
            "kernel 0 along the height",
        ),
        (
            Conv2dGeom {
                stride: [usize::MAX, 1],
                ..g
            },
            &[2, 1, 6],
            "stride 18446744073709551615 along the height",
        ),
        (
            Conv2dGeom {
                pads: [usize::MAX, 0, usize::MAX, 0],
                ..g
            },
            &[2, 6, 6],
            "padding [18446744073709551615, 18446744073709551615] along the height",
        ),
        (
            Conv2dGeom {
                kernel: [9, 3],
                ..g
            },
            &[2, 0, 6],
            "the kernel of 9 (spanning 9 with dilation 1) does not fit the height of 8 padded by [0, 0]",
        ),
        (
            Conv2dGeom {
                dilation: [4, 1],
                ..g
            },
            &[2, 0, 6],
            "spanning 9 with dilation 4",
        ),
        (
            Conv2dGeom { groups: 0, ..g },
            &[2, 6, 6],
            "0 groups do not divide",
        ),
        (
            Conv2dGeom {
                groups: 2,
                in_ch: 2,
                out_ch: 3,
                ..g
            },
            &[3, 6, 6],
            "2 groups do not divide 2 input and 3 output channels",
        ),
        (
            Conv2dGeom { in_ch: 3, ..g },
            &[2, 6, 6],
            "reads shape [1, 8, 8]; the geometry reads [3, 8, 8]",
        ),
        (
            g,
            &[2, 5, 6],
            "output shape [2, 5, 6]; the geometry gives [2, 6, 6]",
        ),
    ];
    for (geom, out, want) in cases {
        let p = problems(&one(conv(geom), out));
        assert!(
            p.iter().all(|m| m.starts_with("node c (conv2d)"))
                && p.iter().any(|m| m.contains(want)),
            "{geom:?}: {p:#?}"
        );
    }
    // Weights of the wrong shape or length, and the wrong bias.
    let with = |shape: Vec<usize>, data: usize, bias: Option<Vec<f64>>| Op::Conv2d {
        geom: g,
        weight: Tensor {
            shape,
            data: vec![0.0; data],
        },
        bias,
    };
    refused(
        &one(with(vec![2, 1, 3, 2], 12, None), &[2, 6, 6]),
        "c",
        &["weights of shape [2, 1, 3, 2]; the geometry needs [2, 1, 3, 3]"],
    );
    refused(
        &one(with(vec![2, 1, 3, 3], 17, None), &[2, 6, 6]),
        "c",
        &["weights hold 17 values"],
    );
    refused(
        &one(with(vec![2, 1, 3, 3], 18, Some(vec![0.0; 5])), &[2, 6, 6]),
        "c",
        &["bias of 5 values for 2 outputs"],
    );
    // Public: no weights and an empty bias is fine.
    validate(&one(with(vec![2, 1, 3, 3], 0, Some(vec![])), &[2, 6, 6])).unwrap();
}

#[test]
fn pooling_geometry_is_checked_with_adversarial_values() {
    let one = |geom: Pool2dGeom, out: &[usize], max: bool| {
        let op = if max {
            Op::MaxPool { geom }
        } else {
            Op::AvgPool {
                geom,
                count_include_pad: false,
            }
        };
        net(&[1, 8, 8], vec![node("p", op, vec![0], out)])
    };
    let g = pool_geom();
    for max in [true, false] {
        let name = if max { "maxpool" } else { "avgpool" };
        validate(&one(g, &[1, 4, 4], max)).unwrap();
        let cases: Vec<(Pool2dGeom, &[usize], &str)> = vec![
            (
                Pool2dGeom {
                    stride: [0, 0],
                    ..g
                },
                &[1, 4, 4],
                "stride 0 along the height",
            ),
            (
                Pool2dGeom {
                    kernel: [0, 2],
                    ..g
                },
                &[1, 4, 4],
                "kernel 0 along the height",
            ),
            (
                Pool2dGeom {
                    kernel: [40000, 40000],
                    ..g
                },
                &[1, 1, 1],
                "the kernel of 40000",
            ),
            (
                Pool2dGeom {
                    pads: [2, 0, 0, 0],
                    ..g
                },
                &[1, 5, 4],
                "padding [2, 0, 0, 0] must be smaller than the 2x2 window",
            ),
            (
                Pool2dGeom { ch: 2, ..g },
                &[2, 4, 4],
                "reads shape [1, 8, 8]; the geometry reads [2, 8, 8]",
            ),
            (g, &[1, 4, 5], "the geometry gives [1, 4, 4]"),
        ];
        for (geom, out, want) in cases {
            let p = problems(&one(geom, out, max));
            assert!(
                p.iter().all(|m| m.starts_with(&format!("node p ({name})")))
                    && p.iter().any(|m| m.contains(want)),
                "{geom:?}: {p:#?}"
            );
        }
    }
    // Global average pooling needs CHW and gives one mean per channel.
    let gap = |input: &[usize], out: &[usize]| {
        net(input, vec![node("g", Op::GlobalAvgPool, vec![0], out)])
    };
    validate(&gap(&[3, 4, 4], &[3, 1, 1])).unwrap();
    refused(
        &gap(&[48], &[3]),
        "g",
        &["reads shape [48]; it needs [C, H, W]"],
    );
    refused(&gap(&[3, 4, 4], &[4]), "g", &["for 3 channels"]);
}

#[test]
fn per_channel_parameters_and_activation_constants_are_checked() {
    let aff = |scale: Vec<f64>, shift: Vec<f64>| {
        net(
            &[3, 2, 2],
            vec![node("bn", Op::Affine { scale, shift }, vec![0], &[3, 2, 2])],
        )
    };
    validate(&aff(vec![1.0; 3], vec![0.5])).unwrap();
    validate(&aff(vec![2.0], vec![0.0; 3])).unwrap();
    refused(
        &aff(vec![1.0; 2], vec![0.0]),
        "bn",
        &["scale of 2 values for 3 channels"],
    );
    refused(
        &aff(vec![1.0], vec![0.0; 12]),
        "bn",
        &["shift of 12 values for 3 channels"],
    );
    refused(&aff(vec![1.0], vec![f64::NAN]), "bn", &["shift 0 is NaN"]);
    refused(&aff(vec![], vec![0.0]), "bn", &["scale of 0 values"]);
    for a in [
        Activation::LeakyRelu { alpha: f64::NAN },
        Activation::Elu {
            alpha: f64::NEG_INFINITY,
        },
    ] {
        refused(
            &net(&[4], vec![node("a", Op::Act(a), vec![0], &[4])]),
            "a",
            &["is not finite"],
        );
    }
}

#[test]
fn every_problem_is_listed_by_node() {
    let g = pool_geom();
    let n = net(
        &[1, 8, 8],
        vec![
            node(
                "pool_stride0",
                Op::MaxPool {
                    geom: Pool2dGeom {
                        stride: [0, 0],
                        ..g
                    },
                },
                vec![0],
                &[1, 4, 4],
            ),
            node("dangling", Op::Act(Activation::Relu), vec![42], &[1, 4, 4]),
            node("flat", Op::Reshape, vec![0], &[64]),
            node("fc_short", dense(3, 64), vec![3], &[2]),
        ],
    );
    let p = problems(&n);
    for name in ["pool_stride0", "dangling", "fc_short"] {
        assert!(
            p.iter().any(|m| m.starts_with(&format!("node {name} ("))),
            "{name}: {p:#?}"
        );
    }
    assert!(!p.iter().any(|m| m.contains("node flat")), "{p:#?}");
    // The message shows the first SHOWN_PROBLEMS and counts the rest; names are made printable.
    let many: Vec<Node> = (0..SHOWN_PROBLEMS + 5)
        .map(|i| node(&format!("bad\n{i}"), Op::Reshape, vec![0], &[3]))
        .collect();
    let e = validate(&net(&[4], many)).unwrap_err();
    assert_eq!(e.problems.len(), SHOWN_PROBLEMS + 5);
    let msg = e.to_string();
    assert!(
        msg.contains("and 5 more problems") && !msg.contains('\n'),
        "{msg}"
    );
    assert!(msg.contains("node bad?0 (reshape)"), "{msg}");
}

#[test]
fn size_limits_are_refused_from_the_description_alone() {
    // Public layers (no weight data): the limits apply to what the shapes would make a party allocate.
    let public_dense = |rows: usize, cols: usize| Op::Dense {
        weight: Tensor {
            shape: vec![rows, cols],
            data: vec![],
        },
        bias: Some(vec![]),
    };
    // One layer over the per-layer limit.
    let n = net(
        &[4096],
        vec![node("wide", public_dense(8192, 4096), vec![0], &[8192])],
    );
    refused(&n, "wide", &["more than the limit of 16777216 per layer"]);
    // Five layers at the per-layer limit: over the total.
    let nodes: Vec<Node> = (0..5)
        .map(|i| {
            node(
                &format!("fc{i}"),
                public_dense(4096, 4096),
                vec![i],
                &[4096],
            )
        })
        .collect();
    let p = problems(&net(&[4096], nodes));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains(&format!(
            "weights in all, above the limit of {MAX_TOTAL_WEIGHTS}"
        )),
        "{p:?}"
    );
    // A convolution whose multiply-accumulates pass the limit.
    let g = Conv2dGeom {
        in_ch: 1024,
        in_h: 64,
        in_w: 64,
        out_ch: 1024,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [1; 4],
        dilation: [1, 1],
        groups: 1,
    };
    let c = Op::Conv2d {
        geom: g,
        weight: Tensor {
            shape: vec![1024, 1024, 3, 3],
            data: vec![],
        },
        bias: None,
    };
    let p = problems(&net(
        &[1024, 64, 64],
        vec![node("big", c, vec![0], &[1024, 64, 64])],
    ));
    assert!(
        p.len() == 1
            && p[0].contains(&format!(
                "multiply-accumulates per record, above the limit of {MAX_MACS}"
            )),
        "{p:?}"
    );
    // A max-pool whose windows would list more entries than the plan limit.
    let pg = Pool2dGeom {
        ch: 256,
        in_h: 128,
        in_w: 128,
        kernel: [8, 8],
        stride: [1, 1],
        pads: [0; 4],
    };
    let p = problems(&net(
        &[256, 128, 128],
        vec![node(
            "windows",
            Op::MaxPool { geom: pg },
            vec![0],
            &[256, 121, 121],
        )],
    ));
    assert!(
        p.len() == 1 && p[0].contains(&format!("above the limit of {MAX_PLAN_ELEMENTS}")),
        "{p:?}"
    );
    // The audit's 40000x40000 pooling: refused at the input.
    let huge = Pool2dGeom {
        ch: 1,
        in_h: 40000,
        in_w: 40000,
        kernel: [2, 2],
        stride: [2, 2],
        pads: [0; 4],
    };
    let p = problems(&net(
        &[1, 40000, 40000],
        vec![node(
            "mp",
            Op::MaxPool { geom: huge },
            vec![0],
            &[1, 20000, 20000],
        )],
    ));
    assert!(
        p.iter()
            .any(|m| m.contains("the input shape [1, 40000, 40000] has 1600000000 elements")),
        "{p:?}"
    );
    // Too many nodes: refused without checking each.
    let nodes: Vec<Node> = (0..=MAX_NODES)
        .map(|i| node("r", Op::Reshape, vec![i], &[4]))
        .collect();
    let p = problems(&net(&[4], nodes));
    assert_eq!(p.len(), 1, "{}", p.len());
    assert!(
        p[0].contains("65537 nodes, above the limit of 65536"),
        "{p:?}"
    );
}

#[test]
fn tensor_construction_refuses_data_that_does_not_fill_the_shape() {
    assert!(Tensor::new(vec![2, 3], vec![0.0; 6]).is_ok());
    let e = Tensor::new(vec![2, 3], vec![0.0; 5]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a tensor of shape [2, 3] needs 6 values; 5 were given"
    );
    let e = Tensor::new(vec![usize::MAX, 3], vec![]).unwrap_err();
    assert!(e.to_string().contains("more than 2^64"), "{e}");
    // An empty shape is a scalar: one value.
    assert!(Tensor::new(vec![], vec![1.0]).is_ok());
    assert!(Tensor::new(vec![], vec![]).is_err());
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Small sizes most of the time, adversarial ones sometimes.
    fn size(&mut self) -> usize {
        match self.next() % 10 {
            0 => 0,
            1 => usize::MAX,
            2 => 1 << 20,
            _ => 1 + (self.next() % 4) as usize,
        }
    }
}

#[test]
fn random_geometry_either_is_refused_or_evaluates_without_panicking() {
    let mut rng = Rng(0x5eed);
    let (mut accepted, mut refused_count) = (0, 0);
    for _ in 0..3000 {
        let (c, h, w) = (
            1 + (rng.next() % 3) as usize,
            1 + (rng.next() % 7) as usize,
            1 + (rng.next() % 7) as usize,
        );
        let kernel = [rng.size(), rng.size()];
        let stride = [rng.size(), rng.size()];
        let pads = [
            rng.size() % 3,
            rng.size() % 3,
            rng.size() % 3,
            rng.size() % 3,
        ];
        let kind = rng.next() % 3;
        let op = match kind {
            0 => {
                let geom = Conv2dGeom {
                    in_ch: c,
                    in_h: h,
                    in_w: w,
                    out_ch: 1 + (rng.next() % 3) as usize,
                    kernel,
                    stride,
                    pads,
                    dilation: [rng.size(), rng.size()],
                    groups: if rng.next().is_multiple_of(4) {
                        rng.size()
                    } else {
                        1
                    },
                };
                // Weights sized as the geometry would need them, unless absurd.
                let shape = [geom.out_ch, geom.in_ch, kernel[0], kernel[1]];
                let n = shape
                    .iter()
                    .try_fold(1usize, |a, d| a.checked_mul(*d))
                    .filter(|n| *n < 4096);
                Op::Conv2d {
                    geom,
                    weight: Tensor {
                        shape: shape.to_vec(),
                        data: vec![0.25; n.unwrap_or(1)],
                    },
                    bias: Some(vec![0.5; geom.out_ch]),
                }
            }
            1 => Op::MaxPool {
                geom: Pool2dGeom {
                    ch: c,
                    in_h: h,
                    in_w: w,
                    kernel,
                    stride,
                    pads,
                },
            },
            _ => Op::AvgPool {
                geom: Pool2dGeom {
                    ch: c,
                    in_h: h,
                    in_w: w,
                    kernel,
                    stride,
                    pads,
                },
                count_include_pad: rng.next().is_multiple_of(2),
            },
        };
        // The output shape the kernels compute (which may be degenerate), or a random one.
        let shape = match &op {
            Op::Conv2d { geom, .. } if !rng.next().is_multiple_of(4) => {
                vec![geom.out_ch, geom.out_h(), geom.out_w()]
            }
            Op::MaxPool { geom } | Op::AvgPool { geom, .. } if !rng.next().is_multiple_of(4) => {
                vec![geom.ch, geom.out_h(), geom.out_w()]
            }
            _ => vec![
                1 + (rng.next() % 3) as usize,
                rng.size() % 9,
                rng.size() % 9,
            ],
        };
        let n = net(&[c, h, w], vec![node("x", op, vec![0], &shape)]);
        match validate(&n) {
            Ok(()) => {
                accepted += 1;
                let x: Vec<f64> = (0..c * h * w).map(|i| i as f64 / 7.0).collect();
                let y = reference::evaluate(&n, &x);
                assert_eq!(y.len(), n.output_len(), "{n:?}");
                assert!(y.iter().all(|v| v.is_finite()), "{n:?}");
            }
            Err(e) => {
                refused_count += 1;
                assert!(e.to_string().contains("node x ("), "{e}");
            }
        }
    }
    // Both outcomes were exercised.
    assert!(
        accepted > 100 && refused_count > 100,
        "{accepted} accepted, {refused_count} refused"
    );
}
