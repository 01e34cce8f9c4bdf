//! Issue 14 through the built binary: a model's feature schema given with
//! `--schema` (so these tests do not depend on what the committed models
//! carry), CSV columns matched by name, plausibility, results files that
//! are never overwritten and only continued by their own run, class-named
//! result columns, `inspect`'s columns, and the CLI's help and round counts.
//! Connections are three processes over TLS.

mod common;

use std::path::Path;

use common::*;

const MODEL: &str = "models/breast-cancer-relu.onnx";

/// A CSV as a header and rows of cells.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    /// `testdata/NAME`.
    fn testdata(name: &str) -> Csv {
        let text = std::fs::read_to_string(root().join("testdata").join(name)).unwrap();
        let mut lines = text
            .lines()
            .map(|l| l.split(',').map(String::from).collect());
        Csv {
            header: lines.next().unwrap(),
            rows: lines.collect(),
        }
    }

    /// Without column `name`.
    fn without(mut self, name: &str) -> Csv {
        let k = self.column(name);
        self.header.remove(k);
        for r in &mut self.rows {
            r.remove(k);
        }
        self
    }

    /// With columns `a` and `b` swapped, header and data alike.
    fn swapped(mut self, a: &str, b: &str) -> Csv {
        let (i, j) = (self.column(a), self.column(b));
        self.header.swap(i, j);
        for r in &mut self.rows {
            r.swap(i, j);
        }
        self
    }

    /// With cell `name` of record `record` set to `value`.
    fn set(mut self, record: usize, name: &str, value: &str) -> Csv {
        let k = self.column(name);
        self.rows[record][k] = value.into();
        self
    }

    fn column(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap()
    }

    /// Writes it to `dir/file` (without the header for `header == false`).
    fn write(&self, dir: &Path, file: &str, header: bool) -> String {
        let mut text = String::new();
        if header {
            text += &(self.header.join(",") + "\n");
        }
        for r in &self.rows {
            text += &(r.join(",") + "\n");
        }
        let p = dir.join(file);
        std::fs::write(&p, text).unwrap();
        path(&p)
    }
}

/// A schema file for `testdata/NAME`'s columns (all but `label`): each
/// column's range is its min/max in the file widened by 10% of the span
/// (clamped at 0 for a column never negative), as `scripts/add_schemas.py`
/// derives them from a training split.
fn schema_file(dir: &Path, name: &str) -> String {
    let csv = Csv::testdata(name).without("label");
    let features: Vec<serde_json::Value> = csv
        .header
        .iter()
        .enumerate()
        .map(|(j, h)| {
            let col: Vec<f64> = csv.rows.iter().map(|r| r[j].parse().unwrap()).collect();
            let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let m = 0.1 * (hi - lo);
            let low = if lo >= 0.0 { (lo - m).max(0.0) } else { lo - m };
            serde_json::json!({"name": h, "range": [low, hi + m]})
        })
        .collect();
    let p = dir.join(format!("{name}.schema.json"));
    std::fs::write(&p, serde_json::json!({ "features": features }).to_string()).unwrap();
    path(&p)
}

/// The labels of a CSV results file (after its run line and header).
fn labels(file: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.starts_with("# cryptmed run {"), "{text}");
    text.lines()
        .skip(2)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// Asserts exit `code` and that standard error says each of `says`.
fn refused(out: &std::process::Output, code: i32, says: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    for s in says {
        assert!(err.contains(s), "expected {s:?} in:\n{err}");
    }
}

fn provider_refusals(d: &Deployment) -> usize {
    d.provider_proc()
        .stderr()
        .matches("the client refused the session (input)")
        .count()
}

/// Waits until the provider has logged `n` client refusals (a refusal is
/// logged after the client has already exited).
fn wait_refusals(d: &Deployment, n: usize) {
    let t = std::time::Instant::now();
    while provider_refusals(d) < n {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "the provider logged {} refusals, not {n}:\n{}",
            provider_refusals(d),
            d.provider_proc().stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn diagnose_matches_columns_by_name_and_checks_records_before_anything_is_sent() {
    let dir = scratch("columns-diagnose");
    let schema = schema_file(&dir, "breast_cancer_test.csv");
    let d = deploy_with("columns-diagnose-d", MODEL, &["--schema", &schema]);
    d.provider_proc().wait_for("30 named columns");
    let test = || Csv::testdata("breast_cancer_test.csv");
    let out = |name: &str| d.dir.join(name);
    let diagnose = |input: &str, output: &Path, extra: &[&str]| {
        let o = path(output);
        let mut args = vec!["--input", input, "--output", &o, "--batch", "64"];
        args.extend_from_slice(extra);
        d.diagnose(&args)
    };

    // The columns in the model's order: the plaintext model's labels.
    let inorder = test().without("label").write(&dir, "inorder.csv", true);
    let o = diagnose(&inorder, &out("inorder.csv"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = labels(&out("inorder.csv"));
    assert_eq!(
        want,
        plaintext_labels(MODEL, Path::new(&inorder), 30),
        "secure = plaintext"
    );

    // Two columns swapped, header and data alike: read by name, the same diagnoses.
    let swapped = test()
        .without("label")
        .swapped("mean radius", "worst texture")
        .write(&dir, "swapped.csv", true);
    let o = diagnose(&swapped, &out("swapped.csv"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(labels(&out("swapped.csv")), want);

    // The test split with its label column: refused naming the column and
    // the flag; skipped with --ignore-column, the same diagnoses. The
    // provider only hears that the client refused.
    let labelled = test().write(&dir, "labelled.csv", true);
    let o = diagnose(&labelled, &out("labelled.csv"), &[]);
    refused(
        &o,
        3,
        &[
            "column 31 `label` is not one of the model's columns",
            "--ignore-column \"label\"",
        ],
    );
    assert!(!out("labelled.csv").exists(), "no output before results");
    wait_refusals(&d, 1);
    let o = diagnose(
        &labelled,
        &out("labelled.csv"),
        &["--ignore-column", "label"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(labels(&out("labelled.csv")), want);

    // A missing column, and an unknown one: named, with the closest name.
    let missing = test()
        .without("label")
        .without("mean texture")
        .write(&dir, "missing.csv", true);
    refused(
        &diagnose(&missing, &out("x.csv"), &[]),
        3,
        &["the model's column `mean texture` is missing (the closest in the file is `"],
    );
    let mut typo = test().without("label");
    typo.header[1] = "mean textur".into();
    let typo = typo.write(&dir, "typo.csv", true);
    refused(
        &diagnose(&typo, &out("x.csv"), &[]),
        3,
        &[
            "column 2 `mean textur` is not one of the model's columns (the closest is `mean texture`)",
        ],
    );

    // No header: refused unless --no-header (the order is then the caller's).
    let bare = test().without("label").write(&dir, "bare.csv", false);
    refused(
        &diagnose(&bare, &out("x.csv"), &[]),
        3,
        &["the file has no header", "--no-header"],
    );
    let o = diagnose(&bare, &out("bare.csv"), &["--no-header"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(labels(&out("bare.csv")), want);
    wait_refusals(&d, 4);

    // An implausible value: refused with the record, column name, value and
    // range, before the client accepts (the provider hears of a refusal, no
    // record is shared); with --allow-implausible diagnosed and marked.
    let odd = test()
        .without("label")
        .set(1, "mean radius", "1000")
        .write(&dir, "odd.csv", true);
    refused(
        &diagnose(&odd, &out("x.csv"), &[]),
        3,
        &[
            "line 3 (record 1), column 1: mean radius = 1000 is outside its plausible range [",
            "--allow-implausible",
        ],
    );
    wait_refusals(&d, 5);
    let o = diagnose(&odd, &out("odd.csv"), &["--allow-implausible"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out("odd.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].ends_with(",implausible"), "{text}");
    assert!(
        lines[3].starts_with("1,") && lines[3].ends_with(",mean radius"),
        "{text}"
    );
    assert!(lines[2].ends_with(','), "{text}");
    assert!(text.contains("\"allow_implausible\":true"), "{text}");

    // A bad number is found before connecting: exit 3 with no provider at all.
    let bad = test()
        .without("label")
        .set(4, "mean area", "abc")
        .write(&dir, "bad.csv", true);
    let closed = format!("127.0.0.1:{}", free_port());
    let o = d.diagnose_at(&closed, &closed, &["--input", &bad]);
    refused(
        &o,
        3,
        &[&format!(
            "{bad}: line 6 (record 4), column 4: `abc` is not a number"
        )],
    );

    // An address without a port: a usage error.
    let o = d.diagnose_at("localhost", &d.dealer, &["--input", &inorder]);
    refused(&o, 2, &["the port is missing"]);
}

#[test]
fn results_are_never_overwritten_resume_only_their_run_and_name_their_classes() {
    let dir = scratch("columns-results");
    let schema = schema_file(&dir, "breast_cancer_test.csv");
    let mut d = deploy_with(
        "columns-results-d",
        MODEL,
        &["--schema", &schema, "--reveal", "probabilities"],
    );
    let input = Csv::testdata("breast_cancer_test.csv")
        .without("label")
        .write(&dir, "records.csv", true);
    let results = d.dir.join("results.csv");
    let (res, jres) = (path(&results), path(&d.dir.join("results.jsonl")));
    let diagnose = |d: &Deployment, extra: &[&str]| {
        let mut args = vec!["--input", &input, "--output", &res, "--batch", "64"];
        args.extend_from_slice(extra);
        d.diagnose(&args)
    };
    let o = diagnose(&d, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let whole = std::fs::read_to_string(&results).unwrap();
    // Columns named by class, in CSV and in JSON.
    assert_eq!(
        whole.lines().nth(1),
        Some("record,label,class_name,p_malignant,p_benign")
    );
    let o = d.diagnose(&["--input", &input, "--output", &jres, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = std::fs::read_to_string(&jres).unwrap();
    let first: serde_json::Value = serde_json::from_str(json.lines().nth(1).unwrap()).unwrap();
    let mut keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["class_name", "label", "p_benign", "p_malignant", "record"]
    );

    // An existing results file: neither truncated nor appended to without
    // --resume or --force (exit 2, the file as it was).
    let o = diagnose(&d, &[]);
    refused(&o, 2, &["already holds results", "--resume", "--force"]);
    assert_eq!(std::fs::read_to_string(&results).unwrap(), whole);

    // Cut after 10 results, then resumed with other records: refused
    // (exit 3), saying what differs, the file as it was.
    let cut: String = whole.lines().take(12).map(|l| format!("{l}\n")).collect();
    std::fs::write(&results, &cut).unwrap();
    let other = Csv::testdata("breast_cancer_test.csv")
        .without("label")
        .set(50, "mean area", "600")
        .write(&dir, "other.csv", true);
    let o = d.diagnose(&[
        "--input", &other, "--output", &res, "--resume", "--batch", "64",
    ]);
    refused(&o, 3, &["cannot resume", "the input records differ"]);
    assert_eq!(std::fs::read_to_string(&results).unwrap(), cut);

    // Another model (here: the same weights with another schema, so another
    // digest) and another output policy: refused, saying which.
    let mut wider: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schema).unwrap()).unwrap();
    wider["features"][0]["range"] = serde_json::json!([0.0, 50.0]);
    let wider_path = d.dir.join("wider.json");
    std::fs::write(&wider_path, wider.to_string()).unwrap();
    let dealer = d.dealer.clone();
    let p2 = d.start_provider(
        "provider-wider",
        MODEL,
        &dealer,
        &["--schema", &path(&wider_path), "--reveal", "probabilities"],
        &[],
    );
    let o = d.diagnose_at(
        &p2,
        &dealer,
        &["--input", &input, "--output", &res, "--resume"],
    );
    refused(&o, 3, &["the model differs (digest"]);
    let p3 = d.start_provider(
        "provider-logits",
        MODEL,
        &dealer,
        &["--schema", &schema, "--reveal", "logits"],
        &[],
    );
    let o = d.diagnose_at(
        &p3,
        &dealer,
        &["--input", &input, "--output", &res, "--resume"],
    );
    refused(
        &o,
        3,
        &["the output policy differs (logits here, probabilities in the file)"],
    );
    assert_eq!(std::fs::read_to_string(&results).unwrap(), cut);

    // The same run resumes: 113 results without a gap, the kept ones unchanged.
    let o = diagnose(&d, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&results).unwrap();
    assert!(text.starts_with(&cut));
    let records: Vec<usize> = text
        .lines()
        .skip(2)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(records, (0..113).collect::<Vec<_>>());
    assert_eq!(labels(&results), labels_of(&whole));

    // --force replaces it (with the run of the new records).
    let o = d.diagnose(&[
        "--input", &other, "--output", &res, "--force", "--batch", "64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let replaced = std::fs::read_to_string(&results).unwrap();
    assert_eq!(replaced.lines().count(), 2 + 113);
    assert_ne!(replaced.lines().next(), whole.lines().next());
}

/// The labels of CSV results text.
fn labels_of(text: &str) -> Vec<usize> {
    text.lines()
        .skip(2)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn eval_and_demo_read_columns_by_name_and_check_plausibility() {
    let dir = scratch("columns-eval");
    let schema = schema_file(&dir, "breast_cancer_test.csv");
    let model = path(&root().join(MODEL));
    let eval = |data: &str, extra: &[&str]| {
        let mut args = vec![
            "eval", "--model", &model, "--schema", &schema, "--data", data, "--json",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let json = |o: &std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", stderr(o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // The labelled split, and the same with columns swapped (its label
    // column kept): the same accuracy.
    let inorder = Csv::testdata("breast_cancer_test.csv").write(&dir, "inorder.csv", true);
    let base = json(&eval(&inorder, &[]));
    assert!(
        base["plaintext_accuracy"].as_f64().unwrap() > 0.95,
        "{base}"
    );
    let swapped = Csv::testdata("breast_cancer_test.csv")
        .swapped("mean radius", "worst texture")
        .swapped("label", "mean area")
        .write(&dir, "swapped.csv", true);
    let v = json(&eval(&swapped, &[]));
    for k in ["records", "plaintext_accuracy", "secure_accuracy"] {
        assert_eq!(v[k], base[k], "{k}");
    }
    // A patient id is skipped by name.
    let mut ids = Csv::testdata("breast_cancer_test.csv");
    ids.header.insert(0, "patient id".into());
    for (i, r) in ids.rows.iter_mut().enumerate() {
        r.insert(0, format!("P{i:04}"));
    }
    let ids = ids.write(&dir, "ids.csv", true);
    refused(&eval(&ids, &[]), 3, &["`P0000` is not a number"]);
    let v = json(&eval(&ids, &["--ignore-column", "patient id"]));
    assert_eq!(v["secure_accuracy"], base["secure_accuracy"]);
    // Plausibility: refused with the name, value and range; let through on request.
    let odd = Csv::testdata("breast_cancer_test.csv")
        .set(1, "mean radius", "1000")
        .write(&dir, "odd.csv", true);
    refused(
        &eval(&odd, &[]),
        3,
        &["line 3 (record 1), column 1: mean radius = 1000 is outside its plausible range ["],
    );
    let v = json(&eval(&odd, &["--allow-implausible"]));
    assert_eq!(v["implausible_values"], 1);
    // Only the records `--limit` keeps are checked: record 1 is beyond one.
    let v = json(&eval(&odd, &["--limit", "1"]));
    assert_eq!(v["records"], 1, "{v}");
    assert_eq!(v["implausible_values"].as_u64().unwrap_or(0), 0, "{v}");

    // demo: the labelled split with swapped columns gives the diagnoses of
    // the split in order (its labels skipped), and the plaintext model's.
    let demo = |input: &str| {
        let o = run(&["demo", "--schema", &schema, "--input", input, "--json"]);
        let v = json(&o);
        v["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["label"], p["plaintext_label"]);
                p["label"].as_u64().unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(demo(&swapped), demo(&inorder));
    refused(
        &run(&["demo", "--schema", &schema, "--input", &odd]),
        3,
        &["mean radius = 1000 is outside its plausible range"],
    );
}

#[test]
fn inspect_shows_the_columns_and_the_schema_is_part_of_the_digest() {
    let dir = scratch("columns-inspect");
    let schema = schema_file(&dir, "breast_cancer_test.csv");
    let model = path(&root().join(MODEL));
    let o = run(&["inspect", &model, "--schema", &schema, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schema).unwrap()).unwrap();
    let cols = v["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 30);
    for (j, (c, f)) in cols
        .iter()
        .zip(file["features"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(c["index"], j + 1);
        assert_eq!(c["name"], f["name"]);
        assert_eq!(c["plausible"], f["range"]);
        // The engine's limit: a power of two covering the plausible range.
        let admitted = c["admitted"].as_f64().unwrap();
        assert_eq!(admitted, 2f64.powi(admitted.log2().round() as i32), "{c}");
        let [lo, hi] = [0, 1].map(|k| f["range"][k].as_f64().unwrap());
        assert!(admitted >= lo.abs().max(hi.abs()), "{c}");
    }
    // A small-valued column gets extra fractional bits.
    let fractal = &cols[9];
    assert_eq!(fractal["name"], "mean fractal dimension");
    assert!(fractal["extra_bits"].as_i64().unwrap() > 0, "{fractal}");
    // The text names the columns.
    let o = run(&["inspect", &model, "--schema", &schema]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("input columns:"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("10  mean fractal dimension") && l.contains("(2^")),
        "{text}"
    );
    // Another schema, another digest (both parties check it).
    let mut other = file.clone();
    other["features"][0]["range"] = serde_json::json!([0.0, 50.0]);
    let p = dir.join("other.json");
    std::fs::write(&p, other.to_string()).unwrap();
    let o = run(&["inspect", &model, "--schema", &path(&p), "--json"]);
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(w["digest"], v["digest"]);
    // A schema that does not fit the model, or is not a schema: exit 3,
    // from inspect and from serve (before listening).
    let mut short = file.clone();
    short["features"].as_array_mut().unwrap().pop();
    let p = dir.join("short.json");
    std::fs::write(&p, short.to_string()).unwrap();
    let says = [
        "does not fit the model",
        "names 29 columns, the model takes 30",
    ];
    refused(&run(&["inspect", &model, "--schema", &path(&p)]), 3, &says);
    let serve = [
        "serve",
        "--model",
        &model,
        "--listen",
        "127.0.0.1:0",
        "--dealer",
        "localhost:1",
        "--insecure-plaintext",
        "--schema",
    ];
    refused(&run(&[&serve[..], &[&path(&p)]].concat()), 3, &says);
    let p = dir.join("junk.json");
    std::fs::write(&p, "{\"columns\": []}").unwrap();
    refused(
        &run(&["inspect", &model, "--schema", &path(&p)]),
        3,
        &["not a schema file"],
    );
}

#[test]
fn help_marks_required_options_and_demo_counts_rounds_as_inspect() {
    let help = |cmd: &str| String::from_utf8_lossy(&run(&[cmd, "--help"]).stdout).into_owned();
    let serve = help("serve");
    assert!(
        serve.contains(
            "Usage: cryptmed serve --model <FILE.onnx> --listen <ADDR> --dealer <ADDR> --ca <FILE> --cert <FILE> --key <FILE>"
        ),
        "{serve}"
    );
    let required = serve.split("Required:").nth(1).expect(&serve);
    for flag in ["--model", "--listen", "--dealer", "--ca", "--cert", "--key"] {
        assert!(required.contains(flag), "{flag} in {serve}");
    }
    let dealer = help("dealer");
    assert!(
        dealer.contains(
            "Usage: cryptmed dealer --listen <ADDR> --ca <FILE> --cert <FILE> --key <FILE>"
        ),
        "{dealer}"
    );
    // A server without its certificate is a usage error, not a server that
    // cannot complete TLS.
    let o = run(&["dealer", "--listen", "127.0.0.1:0", "--ca", "ca.pem"]);
    refused(&o, 2, &["--cert <FILE>", "--key <FILE>"]);
    // diagnose lists the client's options only.
    let client = help("diagnose");
    for flag in [
        "--server",
        "--input",
        "--ignore-column",
        "--no-header",
        "--allow-implausible",
        "--force",
    ] {
        assert!(client.contains(flag), "{flag} in {client}");
    }
    for flag in [
        "--listen",
        "--model",
        "--require-client-cert",
        "--max-sessions",
        "--pair-timeout",
        "--report",
    ] {
        assert!(!client.contains(flag), "{flag} in {client}");
    }

    // demo and inspect: the same session rounds for the same model; the
    // client's own count is one fewer when its result is a one-way message.
    let model = path(&root().join(MODEL));
    for (reveal, one_way) in [("label", true), ("probabilities", true), ("logits", false)] {
        let o = run(&["inspect", &model, "--reveal", reveal, "--json"]);
        let i: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let o = run(&["demo", "--reveal", reveal, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let rounds = i["online_rounds"].as_u64().unwrap();
        assert_eq!(d["cost"]["online_rounds"], rounds, "{reveal}");
        assert_eq!(
            d["cost"]["client_rounds"],
            rounds - u64::from(one_way),
            "{reveal}"
        );
    }
}
