//! Handshake disagreements, unreachable, silent and misconfigured peers,
//! certificates and logs, at the level of the built binary: exit codes 4
//! and 5, messages on both sides, and no secrets in logs at `trace`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use cryptmed_engine::{EngineConfig, Model};
use cryptmed_service::wire::{self, Frame, VERSION};
use cryptmed_service::{Link, Role};

const MODEL: &str = "models/breast-cancer-relu.onnx";

/// A fake provider (in this process) with the deployment's provider
/// certificate: sends `answer` after the hello, or nothing when `None`;
/// returns the client's reply.
fn fake_provider(
    d: &Deployment,
    answer: Option<Frame>,
) -> (String, std::thread::JoinHandle<Option<Frame>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("localhost:{}", l.local_addr().unwrap().port());
    let sec = d.security("provider");
    let h = std::thread::spawn(move || {
        let (tcp, _) = l.accept().ok()?;
        let c = cryptmed_service::tls::accept(
            tcp,
            &sec,
            Duration::from_secs(5),
            Duration::from_secs(20),
        )
        .ok()?;
        let mut link = Link::new(c.stream);
        wire::recv(&mut link, 1 << 20).ok()?;
        match answer {
            Some(a) => {
                wire::send(&mut link, &a).ok()?;
                wire::recv(&mut link, 1 << 20).ok()
            }
            None => {
                std::thread::sleep(Duration::from_secs(4));
                None
            }
        }
    });
    (addr, h)
}

/// The model info the real provider sends, for the fake one to alter.
fn model_info() -> Frame {
    let net = cryptmed_model::onnx::load(&root().join(MODEL)).unwrap();
    let config = EngineConfig::default();
    let digest = Model::compile(net.public(), config)
        .unwrap()
        .architecture_digest();
    Frame::ModelInfo {
        version: VERSION,
        session: "00".repeat(16),
        network: serde_json::to_value(net.public()).unwrap(),
        config: serde_json::to_value(config).unwrap(),
        digest: digest.iter().map(|b| format!("{b:02x}")).collect(),
        class_names: None,
        dealer: "none".into(),
        max_batch: 16,
    }
}

/// `diagnose` of the bundled demo records at `server` and `dealer`.
fn diagnose_at(d: &Deployment, server: &str, dealer: &str, extra: &[&str]) -> std::process::Output {
    let recs = path(&root().join("testdata/breast_cancer_demo.csv"));
    d.diagnose_at(server, dealer, &with(vec!["--input", &recs], extra))
}

#[test]
fn disagreements_exit_5_and_both_sides_say_what_differed() {
    let mut d = deploy("net-mismatch", MODEL, "label");
    // Dealer: a second dealer from another CA, which the client (and that dealer) also trust.
    let other = scratch("net-mismatch-other");
    let other_certs = make_certs(&other, &[]);
    let both = d.dir.join("both-ca.pem");
    std::fs::write(
        &both,
        std::fs::read_to_string(d.certs.join("ca.pem")).unwrap()
            + &std::fs::read_to_string(other_certs.join("ca.pem")).unwrap(),
    )
    .unwrap();
    let port = free_port();
    d.procs.push(spawn(
        &[
            "dealer",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cert",
            &path(&other_certs.join("dealer.pem")),
            "--key",
            &path(&other_certs.join("dealer.key")),
            "--ca",
            &path(&both),
        ],
        &d.dir.join("dealer2.log"),
        &[],
    ));
    wait_port(port);
    let provider = d.provider.clone();
    let out = diagnose_at(
        &d,
        &provider,
        &format!("localhost:{port}"),
        &["--ca", &path(&both)],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dealer mismatch: ours is the dealer at localhost:"),
        "{}",
        stderr(&out)
    );
    d.procs[1].wait_for("the client refused the session (dealer): dealer mismatch");
    // Digest: a provider whose announced digest is not its architecture's.
    let mut info = model_info();
    if let Frame::ModelInfo { digest, .. } = &mut info {
        *digest = "ab".repeat(32);
    }
    let (addr, fake) = fake_provider(&d, Some(info));
    let out = diagnose_at(&d, &addr, &d.dealer, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));
    let reply = fake.join().unwrap();
    assert!(
        matches!(&reply, Some(Frame::Error { code, message }) if code == "digest" && message.contains(&"ab".repeat(32))),
        "{reply:?}"
    );
    // Version: a provider of protocol version 99.
    let mut info = model_info();
    if let Frame::ModelInfo { version, .. } = &mut info {
        *version = 99;
    }
    let (addr, fake) = fake_provider(&d, Some(info));
    let out = diagnose_at(&d, &addr, &d.dealer, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "version mismatch: ours is {VERSION}, the provider's is 99"
        )),
        "{}",
        stderr(&out)
    );
    assert!(matches!(fake.join().unwrap(), Some(Frame::Error { code, .. }) if code == "version"));
    // Digest, provider side: the real provider logs a client's refusal with its reason.
    let sec = d.security("client");
    let c = cryptmed_service::tls::connect(&d.provider, Role::Provider, &sec, Default::default())
        .unwrap();
    let mut link = Link::new(c.stream);
    wire::send(
        &mut link,
        &Frame::Hello {
            version: VERSION,
            reveal: None,
        },
    )
    .unwrap();
    assert!(matches!(
        wire::recv(&mut link, 1 << 20),
        Ok(Frame::ModelInfo { .. })
    ));
    wire::send(
        &mut link,
        &Frame::Error {
            code: "digest".into(),
            message: "digest mismatch: ours is 00, the provider's is 11".into(),
        },
    )
    .unwrap();
    d.procs[1].wait_for("the client refused the session (digest): digest mismatch");
    // And the deployment still diagnoses.
    let out = d.diagnose(&[
        "--input",
        &path(&root().join("testdata/breast_cancer_demo.csv")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn unreachable_silent_and_misconfigured_peers_exit_4_quickly_with_the_reason() {
    let mut d = deploy("net-faults", MODEL, "label");
    // The provider's dealer is down: the client learns it from the provider at once.
    let lonely = d.start_provider("lonely", MODEL, "127.0.0.1:1", &[], &[]);
    let t = Instant::now();
    let out = diagnose_at(&d, &lonely, &d.dealer, &["--timeout", "30"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(
        stderr(&out).contains("the provider refused the session (dealer_unreachable): cannot connect to the dealer at 127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
    // A silent provider and a 1-second timeout: a timeout message after about a second.
    let (addr, fake) = fake_provider(&d, None);
    let t = Instant::now();
    let out = diagnose_at(&d, &addr, &d.dealer, &["--timeout", "1"]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("the provider link failed during model info: timed out waiting for the peer"),
        "{}",
        stderr(&out)
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    fake.join().unwrap();
    // A frame limit below the architecture's size.
    let out = d.diagnose(&[
        "--input",
        &path(&root().join("testdata/breast_cancer_demo.csv")),
        "--max-frame",
        "1024",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exceeds the 1024-byte limit"),
        "{}",
        stderr(&out)
    );
    // A dealer certificate used as the client's: refused by role, on both sides.
    let recs = path(&root().join("testdata/breast_cancer_demo.csv"));
    let out = d.diagnose(&[
        "--input",
        &recs,
        "--cert",
        &d.cert("dealer.pem"),
        "--key",
        &d.cert("dealer.key"),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("certificate for the dealer role; expected client"),
        "{}",
        stderr(&out)
    );
    d.procs[1].wait_for("certificate for the dealer role; expected client");
    // No client certificate: the provider requires one by default, and says so at once.
    let out = run(&[
        "diagnose",
        "--server",
        &d.provider,
        "--dealer",
        &d.dealer,
        "--ca",
        &d.cert("ca.pem"),
        "--input",
        &recs,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("the provider requires a client certificate and this client presented none"),
        "{}",
        stderr(&out)
    );
    // Plain TCP against TLS: both sides name the problem.
    let out = run(&[
        "diagnose",
        "--server",
        &d.provider,
        "--dealer",
        &d.dealer,
        "--insecure-plaintext",
        "--input",
        &recs,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the peer speaks TLS and this side plain TCP"),
        "{}",
        stderr(&out)
    );
    d.procs[1].wait_for("the peer does not speak TLS");
    // The messages never repeat themselves.
    for o in [&out] {
        let e = stderr(o);
        let line = e.lines().find(|l| l.starts_with("error:")).unwrap();
        let parts: Vec<&str> = line.split(": ").collect();
        for w in parts.windows(2) {
            assert_ne!(w[0], w[1], "{line}");
        }
    }
    let out = d.diagnose(&["--input", &recs]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn certificates_are_per_role_and_keys_private() {
    let dir = scratch("net-certs");
    let certs = make_certs(
        &dir,
        &[
            "--dealer-name",
            "127.0.0.1",
            "--provider-name",
            "localhost",
            "--client-name",
            "clinic.test",
        ],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["ca.key", "dealer.key", "provider.key", "client.key"] {
            let mode = std::fs::metadata(certs.join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let mode = std::fs::metadata(certs.join("ca.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0o044);
    }
    let mut d = Deployment {
        dir: dir.clone(),
        certs,
        dealer: String::new(),
        provider: String::new(),
        procs: Vec::new(),
    };
    let dealer = d.start_dealer("dealer", &[], &[]);
    let port = dealer.rsplit_once(':').unwrap().1.to_string();
    let by_ip = format!("127.0.0.1:{port}");
    d.dealer = by_ip.clone();
    d.provider = d.start_provider("provider", MODEL, &by_ip, &[], &[]);
    let recs = path(&root().join("testdata/breast_cancer_demo.csv"));
    // The dealer's certificate is valid for 127.0.0.1 only, not for localhost.
    let provider = d.provider.clone();
    let out = diagnose_at(&d, &provider, &dealer, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not valid for the name"),
        "{}",
        stderr(&out)
    );
    // The provider reached by a name its certificate lacks is refused too.
    let out = diagnose_at(&d, &provider.replace("localhost", "127.0.0.1"), &by_ip, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = d.diagnose(&["--input", &recs]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_key_that_is_not_the_certificates_stops_serve_and_dealer_at_start_with_exit_3() {
    let dir = scratch("net-key-mismatch");
    let certs = make_certs(&dir, &[]);
    let c = |f: &str| path(&certs.join(f));
    let listen = format!("127.0.0.1:{}", free_port());
    let model = path(&root().join(MODEL));
    let tls = |cert: &str| {
        vec![
            "--cert".to_string(),
            c(cert),
            "--key".into(),
            c("client.key"),
            "--ca".into(),
            c("ca.pem"),
        ]
    };
    let dealer: Vec<String> = ["dealer", "--listen", &listen]
        .iter()
        .map(|s| s.to_string())
        .chain(tls("dealer.pem"))
        .collect();
    let serve: Vec<String> = [
        "serve",
        "--model",
        &model,
        "--listen",
        &listen,
        "--dealer",
        "127.0.0.1:1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(tls("provider.pem"))
    .collect();
    for args in [dealer, serve] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("client.key: the private key does not match the certificate"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn logs_at_trace_hold_no_records_weights_or_results() {
    let dir = scratch("net-logs");
    let certs = make_certs(&dir, &[]);
    let mut d = Deployment {
        dir: dir.clone(),
        certs,
        dealer: String::new(),
        provider: String::new(),
        procs: Vec::new(),
    };
    let trace = [("RUST_LOG", "trace")];
    d.dealer = d.start_dealer("dealer", &[], &trace);
    let dealer = d.dealer.clone();
    d.provider = d.start_provider("provider", MODEL, &dealer, &["--reveal", "logits"], &trace);
    let input = root().join("testdata/breast_cancer_demo.csv");
    let out_path = dir.join("out.csv");
    let out = Command::new(BIN)
        .args([
            "diagnose",
            "--server",
            &d.provider,
            "--dealer",
            &d.dealer,
            "--ca",
            &d.cert("ca.pem"),
            "--cert",
            &d.cert("client.pem"),
            "--key",
            &d.cert("client.key"),
            "--input",
            &path(&input),
            "--output",
            &path(&out_path),
            "-vv",
        ])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Wait for both servers to log the session's end.
    d.procs[1].wait_for("session finished");
    d.procs[0].wait_for("session finished");
    let logs = [stderr(&out), d.procs[0].stderr(), d.procs[1].stderr()];
    for (who, log) in ["client", "dealer", "provider"].iter().zip(&logs) {
        assert!(
            log.contains("session"),
            "{who} logged nothing about its session:\n{log}"
        );
        assert!(log.lines().count() > 10, "{who}: too few lines at trace");
    }
    // Values as they appear in the input, weights, and the results.
    let text = std::fs::read_to_string(&input).unwrap();
    let mut secrets: Vec<String> = text
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| v.trim_start_matches(['0', '.']).len() >= 4)
        .collect();
    let net = cryptmed_model::onnx::load(&root().join(MODEL)).unwrap();
    for node in &net.nodes {
        if let cryptmed_model::Op::Dense { weight, .. } = &node.op {
            for w in weight.data.iter().filter(|w| w.abs() > 0.01).take(40) {
                secrets.push(format!("{w}")[..9].to_string());
                secrets.push(format!("{:.6}", w));
            }
        }
    }
    for line in std::fs::read_to_string(&out_path).unwrap().lines().skip(1) {
        for v in line.split(',').skip(3) {
            secrets.push(v.to_string());
        }
    }
    assert!(secrets.len() > 150, "{}", secrets.len());
    let is_digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    for (who, log) in ["client", "dealer", "provider"].iter().zip(&logs) {
        for s in &secrets {
            for (i, _) in log.match_indices(s.as_str()) {
                let before = log[..i].chars().next_back();
                let after = log[i + s.len()..].chars().next();
                assert!(
                    is_digit(before) || is_digit(after),
                    "the {who}'s log holds the secret value {s}: {}",
                    log.get(i.saturating_sub(200)..(i + 100).min(log.len()))
                        .unwrap_or(s)
                );
            }
        }
        // Ring elements (shares, masks) print as long integers (hex dumps of TLS records are words with letters).
        let long = log
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.len() >= 15 && w.chars().all(|c| c.is_ascii_digit()));
        assert!(
            long.is_none(),
            "the {who}'s log holds a long number {long:?}"
        );
    }
}
