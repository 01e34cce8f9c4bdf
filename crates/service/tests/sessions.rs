//! The three roles over real TLS on loopback, and what happens when things go wrong.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cryptmed_engine::{EngineConfig, Model, Reveal};
use cryptmed_model::{reference, zoo};
use cryptmed_service::client::{ClientSetup, diagnose};
use cryptmed_service::provider::ProviderSetup;
use cryptmed_service::tls::{CertSet, Identity, generate_certs};
use cryptmed_service::{Limits, Security, ServiceError, Timeouts, dealer, provider};

struct Deployment {
    certs: CertSet,
    dealer: String,
    provider: String,
    stop: Arc<AtomicBool>,
    net: cryptmed_model::Network,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn limits() -> Limits {
    Limits {
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(10),
        },
        pair_timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

fn security(certs: &CertSet, role: &str, require: bool) -> Security {
    let (c, k) = certs.role(role).unwrap();
    Security::tls(
        certs.ca_pem.as_bytes(),
        Some(Identity::from_pem(c.as_bytes(), k.as_bytes()).unwrap()),
        require,
    )
    .unwrap()
}

fn start(reveal: Reveal) -> Deployment {
    let certs = generate_certs(&["localhost".into(), "127.0.0.1".into()], false).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let dl = TcpListener::bind("127.0.0.1:0").unwrap();
    let dealer_addr = format!("localhost:{}", dl.local_addr().unwrap().port());
    let (sec, st) = (security(&certs, "dealer", false), stop.clone());
    std::thread::spawn(move || dealer::serve(dl, sec, limits(), st));
    let net = zoo::build("medical-mlp", 5).unwrap();
    let model = Model::compile(
        net.clone(),
        EngineConfig {
            reveal,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let setup = Arc::new(ProviderSetup {
        model,
        public: net.public(),
        dealer: dealer_addr.clone(),
        security: security(&certs, "provider", false),
        limits: limits(),
    });
    let pl = TcpListener::bind("127.0.0.1:0").unwrap();
    let provider_addr = format!("localhost:{}", pl.local_addr().unwrap().port());
    let st = stop.clone();
    std::thread::spawn(move || provider::serve(pl, setup, st));
    Deployment {
        certs,
        dealer: dealer_addr,
        provider: provider_addr,
        stop,
        net,
    }
}

fn client(d: &Deployment, reveal: Option<Reveal>) -> ClientSetup {
    ClientSetup {
        server: d.provider.clone(),
        dealer: d.dealer.clone(),
        security: Security::tls(d.certs.ca_pem.as_bytes(), None, false).unwrap(),
        limits: limits(),
        batch: 4,
        reveal,
    }
}

fn run(
    d: &Deployment,
    setup: &ClientSetup,
    records: &[Vec<f64>],
) -> Result<Vec<cryptmed_engine::Prediction>, ServiceError> {
    let mut out = Vec::new();
    diagnose(
        setup,
        |_| Ok(records.to_vec()),
        |_, p, _| {
            out.extend_from_slice(p);
            Ok(())
        },
    )?;
    let _ = d;
    Ok(out)
}

fn assert_correct(d: &Deployment, records: &[Vec<f64>], preds: &[cryptmed_engine::Prediction]) {
    assert_eq!(preds.len(), records.len());
    for (x, p) in records.iter().zip(preds) {
        let want = reference::evaluate(&d.net, x);
        let label = if want[1] > want[0] { 1 } else { 0 };
        assert_eq!(p.label, label);
    }
}

#[test]
fn diagnosis_over_tls_matches_plaintext_and_server_keeps_serving() {
    let d = start(Reveal::Label);
    let records = zoo::random_inputs(&d.net, 9, 4);
    let preds = run(&d, &client(&d, None), &records).unwrap();
    assert_correct(&d, &records, &preds);
    assert!(preds.iter().all(|p| p.logits.is_none()));
    // Policy mismatch: refused on both sides with a message that says what differed.
    let err = run(&d, &client(&d, Some(Reveal::Logits)), &records).unwrap_err();
    assert!(
        err.is_mismatch() && err.to_string().contains("policy"),
        "{err}"
    );
    // Garbage and plain TCP on the TLS port: the server survives.
    let mut s = TcpStream::connect(d.provider.replace("localhost", "127.0.0.1")).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\x01garbage")
        .unwrap();
    drop(s);
    let plain = ClientSetup {
        security: Security::Plaintext,
        ..client(&d, None)
    };
    assert!(run(&d, &plain, &records[..1]).is_err());
    // A client that trusts another CA cannot connect.
    let other = generate_certs(&["localhost".into()], false).unwrap();
    let wrong_ca = ClientSetup {
        security: Security::tls(other.ca_pem.as_bytes(), None, false).unwrap(),
        ..client(&d, None)
    };
    let err = run(&d, &wrong_ca, &records[..1]).unwrap_err();
    assert!(matches!(err, ServiceError::Handshake { .. }), "{err}");
    // An unreachable dealer is a clear error, not a hang.
    let lost = ClientSetup {
        dealer: "127.0.0.1:1".into(),
        ..client(&d, None)
    };
    let err = run(&d, &lost, &records[..1]).unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    // And the next client is served correctly.
    let preds = run(&d, &client(&d, None), &records[..3]).unwrap();
    assert_correct(&d, &records[..3], &preds);
}

#[test]
fn logits_policy_and_many_concurrent_clients() {
    let d = Arc::new(start(Reveal::Logits));
    let records = zoo::random_inputs(&d.net, 3, 9);
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (d, records) = (d.clone(), records.clone());
            std::thread::spawn(move || {
                let preds = run(&d, &client(&d, None), &records).unwrap();
                assert_correct(&d, &records, &preds);
                for (x, p) in records.iter().zip(&preds) {
                    let want = reference::evaluate(&d.net, x);
                    for (a, b) in p.logits.as_ref().unwrap().iter().zip(&want) {
                        assert!((a - b).abs() < 1e-2);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
