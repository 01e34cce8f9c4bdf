//! `cryptmed bench --network NAME --random-weights --json` and
//! `cryptmed bench --op NAME --json`: the fields the issues ask for, and the
//! measured costs and errors against their targets.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cryptmed"))
        .arg("bench")
        .args(args)
        .output()
        .expect("running cryptmed");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

/// Every benchmark network (seeded random weights, in process): the issue's
/// fields, its byte and round targets, exact agreement with the f64 reference.
#[test]
fn networks_report_the_issue_fields_within_their_targets() {
    // (network, online bytes at most, online rounds at most), issue 2's targets.
    let targets = [
        ("secureml-mlp", 48_000, 22),
        ("chameleon-cnn", 150_000, 22),
        ("minionn-mnist", 1_500_000, 64),
        ("securenn-lenet", 2_000_000, 64),
        ("minionn-cifar", 22_000_000, 72),
        ("medical-mlp", 16_000, 22),
    ];
    for (name, bytes, rounds) in targets {
        let inputs = if name == "minionn-cifar" { "2" } else { "10" };
        let r = bench(&[
            "--network",
            name,
            "--random-weights",
            "--json",
            "--inputs",
            inputs,
        ]);
        for key in [
            "online_bytes",
            "online_rounds",
            "setup_bytes",
            "offline_bytes",
            "online_seconds",
            "offline_seconds",
            "max_abs_error",
            "argmax_agreement",
            "inputs",
        ] {
            assert!(r.get(key).is_some(), "{name} lacks {key}: {r}");
        }
        assert_eq!(r["network"], name);
        assert_eq!(r["inputs"].as_u64(), Some(inputs.parse().unwrap()));
        assert!(num(&r, "online_bytes") <= bytes as f64, "{name}: {r}");
        assert!(num(&r, "online_rounds") <= rounds as f64, "{name}: {r}");
        assert!(num(&r, "setup_bytes") > 0.0 && num(&r, "offline_bytes") > 0.0);
        assert_eq!(num(&r, "argmax_agreement"), 1.0, "{name}: {r}");
        assert!(num(&r, "max_abs_error") <= 1e-2, "{name}: {r}");
    }
}

/// Every operation: the issue's fields, its error within the stated bound
/// over the sweep, and the cost targets of issue 3 (sigmoid and tanh at most
/// 750 bytes and 16 rounds per element online; ReLU at most 120 bytes and 9).
#[test]
fn ops_report_the_issue_fields_and_meet_their_bounds() {
    let ops = [
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "softplus",
        "elu",
        "selu",
        "silu",
        "gelu",
        "gelu_tanh",
        "erf",
        "exp",
        "reciprocal",
        "softmax",
    ];
    for op in ops {
        // A sparse sweep keeps the test short; the approx sweep test covers every unit.
        let r = bench(&["--op", op, "--json", "--stride", "97", "--elements", "8192"]);
        for key in [
            "op",
            "online_bytes_per_element",
            "online_rounds",
            "offline_bytes_per_element",
            "seconds_per_element",
            "max_abs_error",
            "max_rel_error",
            "elements",
        ] {
            assert!(r.get(key).is_some(), "{op} lacks {key}: {r}");
        }
        assert_eq!(r["op"], op);
        assert!(num(&r, "elements") > 1000.0, "{op}: {r}");
        assert_eq!(r["within_bound"], true, "{op}: {r}");
        let (bytes, rounds) = (
            num(&r, "online_bytes_per_element"),
            num(&r, "online_rounds"),
        );
        assert!(bytes > 0.0 && rounds > 0.0, "{op}: {r}");
        match op {
            "sigmoid" | "tanh" => assert!(bytes <= 750.0 && rounds <= 16.0, "{op}: {r}"),
            "relu" => assert!(bytes <= 120.0 && rounds <= 9.0, "{op}: {r}"),
            _ => {}
        }
    }
    // The symmetric method is a choice with the same bound and fewer bytes.
    let direct = bench(&["--op", "sigmoid", "--json", "--stride", "97"]);
    let symmetric = bench(&[
        "--op",
        "sigmoid",
        "--smooth",
        "symmetric",
        "--json",
        "--stride",
        "97",
    ]);
    assert_eq!(symmetric["within_bound"], true, "{symmetric}");
    assert!(num(&symmetric, "online_bytes_per_element") < num(&direct, "online_bytes_per_element"));
    assert!(num(&symmetric, "online_rounds") <= 16.0);
}

/// An unknown operation or network is a usage error naming what exists.
#[test]
fn unknown_names_are_usage_errors() {
    for args in [
        &["bench", "--op", "cosine"][..],
        &["bench", "--network", "resnet", "--random-weights"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cryptmed"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("sigmoid") || err.contains("secureml-mlp"),
            "{args:?}: {err}"
        );
    }
}
