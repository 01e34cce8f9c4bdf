//! Bad records through the built binary: each refusal exits with 3 and
//! names the file, the line and record (CSV) or record (binary formats), the
//! column and the allowed range; `eval` finds its data or says where it
//! fell back to, and never pairs records with a different number of labels.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn npy(shape: &str, values: &[f64]) -> Vec<u8> {
    let mut h = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((h.len() as u16).to_le_bytes());
    v.extend(h.as_bytes());
    v.extend(values.iter().flat_map(|x| x.to_le_bytes()));
    v
}

fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

/// `testdata/NAME` with cell `column` (1-based) of file line `line` replaced by `value`.
fn edited(dir: &Path, name: &str, line: usize, column: usize, value: &str) -> String {
    let text = std::fs::read_to_string(root().join("testdata").join(name)).unwrap();
    let out: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 != line {
                return l.to_string();
            }
            let mut cells: Vec<&str> = l.split(',').collect();
            cells[column - 1] = value;
            cells.join(",")
        })
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, out.join("\n") + "\n").unwrap();
    path(&p)
}

fn model(name: &str) -> String {
    path(&root().join("models").join(name))
}

#[test]
fn eval_and_demo_refuse_bad_records_with_file_line_column_and_range() {
    let dir = scratch("records-refuse");
    // kidney_test.csv line 8 is record 6; column 3 is the specific gravity
    // (about 1.02): 5000 encodes fine but is past this model's range for it.
    // (Past its plausible range too, where the model has a schema: let through.)
    let bad = edited(&dir, "kidney_test.csv", 8, 3, "5000");
    let out = run(&[
        "eval",
        "--model",
        &model("kidney-sigmoid.onnx"),
        "--data",
        &bad,
        "--allow-implausible",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let want = format!(
        "{bad}: line 8 (record 6), column 3: 5000 is outside this model's range for this column, [-"
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(stderr(&out).contains("2^62"), "{}", stderr(&out));
    // A count in the tens of thousands is well inside its own column's range.
    let ok = edited(&dir, "kidney_test.csv", 8, 17, "26400");
    let out = run(&[
        "eval",
        "--model",
        &model("kidney-sigmoid.onnx"),
        "--data",
        &ok,
        "--limit",
        "8",
        "--allow-implausible",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Non-numeric and NaN cells of the same line name the same place.
    for (cell, what) in [
        ("abc", "`abc` is not a number"),
        ("NaN", "NaN is not a finite number"),
    ] {
        let bad = edited(&dir, "kidney_test.csv", 8, 3, cell);
        let out = run(&[
            "eval",
            "--model",
            &model("kidney-relu.onnx"),
            "--data",
            &bad,
        ]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{bad}: line 8 (record 6), column 3: {what}")),
            "{}",
            stderr(&out)
        );
    }
    // NPY of the wrong shape: 3 x 20 for a 30-input model is not 2 records.
    let p = dir.join("wrong.npy");
    std::fs::write(&p, npy("(3, 20)", &[0.5; 60])).unwrap();
    let out = run(&["demo", "--input", &path(&p)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}: an array of shape (3, 20) does not hold records of the model's input shape (30)",
            path(&p)
        )),
        "{}",
        stderr(&out)
    );
    // An IDX label file is not records.
    let p = dir.join("t10k-labels-idx1-ubyte");
    std::fs::write(&p, idx(&[3], &[7, 2, 1])).unwrap();
    let out = run(&[
        "demo",
        "--model",
        &model("secureml-mlp.onnx"),
        "--input",
        &path(&p),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}: an IDX label file (magic 0x00000801, 3 labels): it holds labels, not records",
            path(&p)
        )),
        "{}",
        stderr(&out)
    );
    // `--limit 0` evaluates nothing: a usage error.
    let out = run(&[
        "eval",
        "--model",
        &model("kidney-relu.onnx"),
        "--data",
        "kidney",
        "--limit",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn eval_falls_back_to_the_committed_subset_and_refuses_unpaired_labels() {
    let dir = scratch("records-eval-data");
    let eval = |args: &[&str]| {
        Command::new(BIN)
            .arg("eval")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let mlp = model("secureml-mlp.onnx");
    if !root().join("data/mnist").exists() {
        let out = eval(&["--model", &mlp, "--data", "mnist", "--limit", "3", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "note: data/mnist is not prepared (python3 scripts/prepare_data.py mnist); \
                 using the committed testdata/mnist_test_200.csv (the first 200 MNIST test digits)"
            ),
            "{}",
            stderr(&out)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["records"], 3);
    }
    // A prepared data/mnist (here, in the working directory) with 5 images
    // and 4 labels: refused, not truncated to 4.
    let mnist = dir.join("data/mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let images = mnist.join("t10k-images.idx3-ubyte");
    std::fs::write(&images, idx(&[5, 28, 28], &[0; 5 * 784])).unwrap();
    let labels = mnist.join("t10k-labels.idx1-ubyte");
    std::fs::write(&labels, idx(&[4], &[0, 1, 2, 3])).unwrap();
    let out = eval(&["--model", &mlp, "--data", "mnist"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("4 labels for the 5 records of")
            && stderr(&out).contains("refusing to pair them"),
        "{}",
        stderr(&out)
    );
    // With as many labels as images it runs on them.
    std::fs::write(&labels, idx(&[5], &[0, 1, 2, 3, 4])).unwrap();
    let out = eval(&["--model", &mlp, "--data", "mnist", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"], 5);
}

/// The provider's per-column limits reach the client with the session: a
/// record past one is refused mid-run with the file's line and column,
/// after the finished results are kept.
#[test]
fn diagnose_names_the_line_of_a_record_past_the_providers_range() {
    let d = deploy(
        "records-diagnose",
        "models/breast-cancer-relu.onnx",
        "label",
    );
    let rec = unlabelled_records(&d.dir);
    // Line 20 is record 18 (after the header); column 5 is the mean
    // smoothness (about 0.1).
    let text = std::fs::read_to_string(&rec).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i != 19 {
                return l.to_string();
            }
            let mut c: Vec<&str> = l.split(',').collect();
            c[4] = "20000";
            c.join(",")
        })
        .collect();
    std::fs::write(&rec, lines.join("\n") + "\n").unwrap();
    let out_path = d.dir.join("out.csv");
    let out = d.diagnose(&[
        "--input",
        &path(&rec),
        "--output",
        &path(&out_path),
        "--batch",
        "16",
        // Past its plausible range too, where the model has a schema.
        "--allow-implausible",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("stopped after 16 of 113 records"), "{err}");
    assert!(
        err.contains(&format!(
            "{}: line 20 (record 18), column 5: 20000 is outside this model's range for this column, [-",
            path(&rec)
        )),
        "{err}"
    );
    let written = std::fs::read_to_string(&out_path).unwrap();
    // The run's comment line, the header and the 16 finished results.
    assert_eq!(written.lines().count(), 2 + 16, "{written}");
}
