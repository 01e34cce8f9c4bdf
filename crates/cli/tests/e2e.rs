//! The three roles as separate processes of the built binary, over TLS on
//! loopback: a diagnosis equals the plaintext prediction; faults end with
//! clear messages and documented exit codes; an interrupted run resumes.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cryptmed");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn wait_port(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

struct Deployment {
    dir: PathBuf,
    dealer: String,
    provider: String,
    _procs: Vec<Proc>,
}

fn deploy(tag: &str, reveal: &str) -> Deployment {
    let dir = std::env::temp_dir().join(format!("cryptmed-e2e-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = dir.join("certs");
    let out = run(&["certs", "--out", certs.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = |f: &str| certs.join(f).to_str().unwrap().to_string();
    let (dp, pp) = (free_port(), free_port());
    let dealer = format!("localhost:{dp}");
    let provider = format!("localhost:{pp}");
    let d = spawn(&[
        "dealer",
        "--listen",
        &format!("127.0.0.1:{dp}"),
        "--cert",
        &c("dealer.pem"),
        "--key",
        &c("dealer.key"),
        "--ca",
        &c("ca.pem"),
        "--timeout",
        "10",
    ]);
    wait_port(dp);
    let model = root().join("models/breast-cancer-relu.onnx");
    let p = spawn(&[
        "serve",
        "--model",
        model.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{pp}"),
        "--dealer",
        &dealer,
        "--cert",
        &c("provider.pem"),
        "--key",
        &c("provider.key"),
        "--ca",
        &c("ca.pem"),
        "--reveal",
        reveal,
        "--timeout",
        "10",
    ]);
    wait_port(pp);
    Deployment {
        dir,
        dealer,
        provider,
        _procs: vec![d, p],
    }
}

impl Deployment {
    fn diagnose(&self, extra: &[&str]) -> Output {
        let ca = self.dir.join("certs/ca.pem");
        let mut args = vec![
            "diagnose",
            "--server",
            &self.provider,
            "--dealer",
            &self.dealer,
            "--ca",
            ca.to_str().unwrap(),
            "--timeout",
            "10",
        ];
        args.extend_from_slice(extra);
        run(&args)
    }
}

fn plaintext_labels(records: &Path) -> Vec<usize> {
    let net = cryptmed_model::onnx::load(&root().join("models/breast-cancer-relu.onnx")).unwrap();
    let recs = cryptmed_model::input::load(records, 30, false, 1e9).unwrap();
    recs.records
        .iter()
        .map(|x| {
            let y = cryptmed_model::reference::evaluate(&net, x);
            if y[1] > y[0] { 1 } else { 0 }
        })
        .collect()
}

#[test]
fn three_processes_diagnose_like_plaintext_and_faults_exit_clearly() {
    let d = deploy("main", "label");
    let input = root().join("testdata/breast_cancer_test.csv");
    // The test split has labels in its last column: strip them into a records file.
    let text = std::fs::read_to_string(&input).unwrap();
    let records: String = text
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    let rec_path = d.dir.join("records.csv");
    std::fs::write(&rec_path, records).unwrap();
    let out_path = d.dir.join("out.jsonl");
    let out = d.diagnose(&[
        "--input",
        rec_path.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
        "--json",
        "--batch",
        "16",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = plaintext_labels(&rec_path);
    let got: Vec<usize> = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["label"]
                .as_u64()
                .unwrap() as usize
        })
        .collect();
    assert_eq!(got, want);

    // CSV to standard output, with class names.
    let out = d.diagnose(&[
        "--input",
        root()
            .join("testdata/breast_cancer_demo.csv")
            .to_str()
            .unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("record,label,class_name\n0,1,benign"),
        "{stdout}"
    );

    // Policy mismatch: exit 5, says what differed.
    let out = d.diagnose(&["--input", rec_path.to_str().unwrap(), "--reveal", "logits"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy"));
    // Bad records: exit 3, names the file, row and column.
    let bad = d.dir.join("bad.csv");
    std::fs::write(&bad, "1,2,3\n").unwrap();
    let out = d.diagnose(&["--input", bad.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("row 1: 3 values, the model expects 30"));
    // Unreachable dealer: exit 4.
    let ca = d.dir.join("certs/ca.pem");
    let out = run(&[
        "diagnose",
        "--server",
        &d.provider,
        "--dealer",
        "127.0.0.1:1",
        "--ca",
        ca.to_str().unwrap(),
        "--input",
        rec_path.to_str().unwrap(),
        "--timeout",
        "5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A model that cannot be loaded: exit 3 before listening.
    let out = run(&[
        "serve",
        "--model",
        root()
            .join("crates/model/tests/fixtures/refuse_sin_cos.onnx")
            .to_str()
            .unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--dealer",
        &d.dealer,
        "--insecure-plaintext",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(Sin, opset 17)"));
    // The servers are still serving.
    let out = d.diagnose(&[
        "--input",
        root()
            .join("testdata/breast_cancer_demo.csv")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success());
}

#[test]
fn interrupted_session_keeps_results_and_resumes() {
    let mut d = deploy("resume", "logits");
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
    let ca = d.dir.join("certs/ca.pem");
    let args = [
        "diagnose",
        "--server",
        &d.provider,
        "--dealer",
        &d.dealer,
        "--ca",
        ca.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
        "--batch",
        "1",
        "--timeout",
        "5",
    ];
    let child = Command::new(BIN)
        .args(args)
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
    d._procs.pop();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stopped after") && err.contains("--resume"),
        "{err}"
    );
    let done = std::fs::read_to_string(&out_path).unwrap().lines().count() - 1;
    assert!(done > 0 && done < 400);
    // Restart the provider and resume.
    let pp: u16 = d.provider.rsplit_once(':').unwrap().1.parse().unwrap();
    let c = |f: &str| d.dir.join("certs").join(f).to_str().unwrap().to_string();
    d._procs.push(spawn(&[
        "serve",
        "--model",
        root()
            .join("models/breast-cancer-relu.onnx")
            .to_str()
            .unwrap(),
        "--listen",
        &format!("127.0.0.1:{pp}"),
        "--dealer",
        &d.dealer,
        "--cert",
        &c("provider.pem"),
        "--key",
        &c("provider.key"),
        "--ca",
        &c("ca.pem"),
        "--reveal",
        "logits",
        "--timeout",
        "10",
    ]));
    wait_port(pp);
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let out = run(&resumed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    let indices: Vec<usize> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(indices, (0..400).collect::<Vec<_>>());
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("record,label,class_name,logit0,logit1")
    );
}
