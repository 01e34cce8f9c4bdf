//! The three roles as separate processes of the built binary, over TLS on
//! loopback: a diagnosis equals the plaintext prediction; faults end with
//! clear messages and documented exit codes; an interrupted run resumes.
//! Every server's standard error is kept and must never say "panicked".

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MODEL: &str = "models/breast-cancer-relu.onnx";

#[test]
fn three_processes_diagnose_like_plaintext_and_faults_exit_clearly() {
    let d = deploy("e2e-main", MODEL, "label");
    let rec_path = unlabelled_records(&d.dir);
    let out_path = d.dir.join("out.jsonl");
    let out = d.diagnose(&[
        "--input",
        &path(&rec_path),
        "--output",
        &path(&out_path),
        "--json",
        "--batch",
        "16",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = plaintext_labels(MODEL, &rec_path, 30);
    let text = std::fs::read_to_string(&out_path).unwrap();
    // The first line names the run the results belong to.
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["cryptmed_run"]["reveal"], "label", "{text}");
    let got: Vec<usize> = text
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["label"]
                .as_u64()
                .unwrap() as usize
        })
        .collect();
    assert_eq!(got, want);

    // CSV to standard output, with class names.
    let demo = path(&root().join("testdata/breast_cancer_demo.csv"));
    let out = d.diagnose(&["--input", &demo]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (first, rest) = stdout.split_once('\n').unwrap();
    assert!(first.starts_with("# cryptmed run {\"input\":"), "{stdout}");
    assert!(
        rest.starts_with("record,label,class_name\n0,1,benign"),
        "{stdout}"
    );

    // Policy mismatch: exit 5, both sides say what differed.
    let out = d.diagnose(&["--input", &path(&rec_path), "--reveal", "logits"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("policy mismatch"), "{}", stderr(&out));
    d.provider_proc()
        .wait_for("policy mismatch: ours is label, the client's is logits");
    // Bad records: exit 3, names the file, line and record, and tells the
    // provider only that the records do not fit.
    let bad = d.dir.join("bad.csv");
    std::fs::write(&bad, "1,2,3\n").unwrap();
    let out = d.diagnose(&["--input", &path(&bad), "--no-header"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}: 3 values per record, the model expects 30",
            path(&bad)
        )),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("stopped after"), "{}", stderr(&out));
    d.provider_proc().wait_for(
        "the client refused the session (input): the client's records do not fit the model",
    );
    // A model that cannot be loaded: exit 3 before listening.
    let out = run(&[
        "serve",
        "--model",
        &path(&root().join("crates/model/tests/fixtures/refuse_sin_cos.onnx")),
        "--listen",
        "127.0.0.1:0",
        "--dealer",
        &d.dealer,
        "--insecure-plaintext",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("(Sin, opset 17)"));
    // Results to a closed pipe: a local failure (exit 1) that says so.
    let out = d.diagnose_with_stdout_closed(&["--input", &path(&rec_path)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writing results to standard output")
            && !stderr(&out).contains("configuration"),
        "{}",
        stderr(&out)
    );
    // The servers are still serving.
    let out = d.diagnose(&["--input", &demo]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn interrupted_session_keeps_results_and_resumes_in_the_same_format() {
    let mut d = deploy("e2e-resume", MODEL, "logits");
    let one = std::fs::read_to_string(root().join("testdata/breast_cancer_demo.csv")).unwrap();
    let mut lines = one.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut text = format!("{header}\n");
    for i in 0..400 {
        text.push_str(rows[i % rows.len()]);
        text.push('\n');
    }
    let input = d.dir.join("many.csv");
    std::fs::write(&input, text).unwrap();
    let out_path = d.dir.join("results.csv");
    let (ca, cert, key) = (d.cert("ca.pem"), d.cert("client.pem"), d.cert("client.key"));
    let (inp, outp) = (path(&input), path(&out_path));
    let args = |server: &str, dealer: &str| -> Vec<String> {
        [
            "diagnose",
            "--server",
            server,
            "--dealer",
            dealer,
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--input",
            &inp,
            "--output",
            &outp,
            "--batch",
            "1",
            "--timeout",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let first = args(&d.provider, &d.dealer);
    let child = Command::new(BIN)
        .args(&first)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the provider once some results are written.
    let t = Instant::now();
    while std::fs::read_to_string(&out_path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 5
    {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(5));
    }
    d.procs.pop();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("stopped after") && err.contains("of 400 records") && err.contains("--resume"),
        "{err}"
    );
    // The run's comment line and the header, then the results.
    let done = std::fs::read_to_string(&out_path).unwrap().lines().count() - 2;
    assert!(done > 0 && done < 400);
    // A partly written last line (as after a crash mid-write) is dropped on resume.
    let mut partial = std::fs::read_to_string(&out_path).unwrap();
    partial.push_str(&format!("{done},1,mali"));
    std::fs::write(&out_path, &partial).unwrap();
    // Resuming a CSV output with --json is refused (exit 2), and the file is untouched but for the partial line.
    let mut json = first.clone();
    json.extend(["--resume".to_string(), "--json".to_string()]);
    let out = run(&json.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("holds CSV results; continue them without --json"),
        "{}",
        stderr(&out)
    );
    // Restart the provider on the same port and resume.
    let dealer = d.dealer.clone();
    let port: u16 = d.provider.rsplit_once(':').unwrap().1.parse().unwrap();
    d.procs.push(spawn(
        &[
            "serve",
            "--model",
            &path(&root().join(MODEL)),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--dealer",
            &dealer,
            "--cert",
            &d.cert("provider.pem"),
            "--key",
            &d.cert("provider.key"),
            "--ca",
            &d.cert("ca.pem"),
            "--reveal",
            "logits",
        ],
        &d.dir.join("provider2.log"),
        &[],
    ));
    wait_port(port);
    let mut resumed = first.clone();
    resumed.push("--resume".into());
    let out = run(&resumed.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dropped a partly written last line"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    let indices: Vec<usize> = text
        .lines()
        .skip(2)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(indices, (0..400).collect::<Vec<_>>());
    assert!(text.lines().next().unwrap().starts_with("# cryptmed run {"));
    assert_eq!(
        text.lines().nth(1),
        Some("record,label,class_name,logit_malignant,logit_benign")
    );
    // JSON: resume continues after the last record index, with no gap or repeat.
    // A whole JSON run, cut after its run line and 10 results (and a
    // partly written 11th), then resumed.
    let jpath = d.dir.join("results.jsonl");
    let mut j = args(&d.provider, &d.dealer);
    let pos = j.iter().position(|a| a == "--output").unwrap();
    j[pos + 1] = path(&jpath);
    let pos = j.iter().position(|a| a == "--batch").unwrap();
    j[pos + 1] = "64".into();
    j.push("--json".into());
    let out = run(&j.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    let whole = std::fs::read_to_string(&jpath).unwrap();
    let kept: String = whole.lines().take(11).map(|l| format!("{l}\n")).collect();
    std::fs::write(&jpath, kept + "{\"record\":10,\"lab").unwrap();
    j.push("--resume".into());
    let out = run(&j.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&jpath).unwrap();
    // The kept lines stay as they were; the labels (secure, so equal to
    // the whole run's) follow without a gap or a repeat.
    let head: Vec<&str> = whole.lines().take(11).collect();
    assert!(text.lines().take(11).eq(head.iter().copied()));
    let labels = |t: &str| -> Vec<u64> {
        t.lines()
            .skip(1)
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["label"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert!(
        labels(&text) == labels(&whole),
        "labels differ after resuming"
    );
    let records: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["record"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(records, (0..400).collect::<Vec<_>>());
}

/// Output piped into a reader that has gone (as `| head` leaves it): the
/// command ends quietly with status 141 (SIGPIPE's, as Unix tools report
/// it), no panic.
/// (Results of `diagnose` are another matter: losing them is an error,
/// exit 1, as the first test checks.)
#[test]
fn a_reader_that_has_gone_ends_the_output_quietly() {
    // Closed before the command has loaded its model, let alone printed.
    let out = run_with_stdout_closed(&["inspect", &path(&root().join(MODEL))]);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
