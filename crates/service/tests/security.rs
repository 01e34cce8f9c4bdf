//! The security review's properties over real TLS on loopback: pairing is
//! bound to the provider-client channel, the dealer never hears of a
//! session the client refused, and session ids never reach a log.

mod common;

use common::*;
use cryptmed_engine::{EngineConfig, Reveal};
use cryptmed_service::wire::{self, Frame};
use cryptmed_service::{Role, ServiceError, session_tag};

#[test]
fn a_hijacker_who_knows_the_session_id_is_refused_and_the_real_session_completes() {
    init();
    let d = deploy(Reveal::Label, limits());
    let recs = records(6);
    let config = serde_json::to_value(EngineConfig::default()).unwrap();
    let mut hijacker = None;
    let mut out = Vec::new();
    let info = cryptmed_service::client::diagnose(
        &d.client(),
        |info| {
            // A party with a valid client certificate that learned the id
            // joins the dealer first, as the client, with everything else right.
            let mut link = raw(
                &d.dealer,
                Role::Dealer,
                &security(&d.certs, "client", false),
            );
            let network = serde_json::to_value(&info.network).unwrap();
            let frame = join(
                "client",
                &info.session,
                network,
                config.clone(),
                &info.digest,
            );
            wire::send(&mut link, &frame).unwrap();
            wait_log(&[
                "dealer{",
                "role=\"client\"",
                &format!("tag=\"{}\"", info.tag),
                "joined",
            ]);
            hijacker = Some(link);
            Ok(recs.clone())
        },
        |_, p, _| {
            out.extend_from_slice(p);
            Ok(())
        },
    )
    .unwrap();
    assert_correct(&d.net, &recs, &out);
    // The hijacker was never paired: it waited alone and was refused.
    let mut link = hijacker.unwrap();
    match wire::recv(&mut link, 1 << 20) {
        Ok(Frame::Busy { message, .. }) => {
            assert!(message.contains("no partner joined"), "{message}");
            assert!(!message.contains(&info.session), "{message}");
        }
        other => panic!("the hijacker got {other:?}"),
    }
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn a_client_that_refuses_the_session_never_opens_one_at_the_dealer() {
    init();
    let d = deploy(Reveal::Label, limits());
    let mut tag = String::new();
    let e = cryptmed_service::client::diagnose(
        &d.client(),
        |info| {
            tag = info.tag.clone();
            Err(ServiceError::Input("the records do not fit".into()))
        },
        |_, _, _| Ok(()),
    )
    .unwrap_err();
    assert!(matches!(e, ServiceError::Input(_)), "{e}");
    let tagged = format!("tag=\"{tag}\"");
    wait_log(&["session{", &tagged, "session failed", "input"]);
    // A later session pairs at the dealer; by then no join of ours could still be pending.
    let (preds, _) = run(&d.client(), &records(1)).unwrap();
    assert_correct(&d.net, &records(1), &preds);
    let at_dealer: Vec<String> = logs()
        .into_iter()
        .filter(|l| l.contains("dealer{") && l.contains(&tagged))
        .collect();
    assert!(at_dealer.is_empty(), "{at_dealer:?}");
}

#[test]
fn session_ids_never_reach_a_log_and_all_three_parties_log_the_same_tag() {
    init();
    let d = deploy(Reveal::Logits, limits());
    let recs = records(3);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut setup = d.client();
        setup.batch = 2;
        let info =
            cryptmed_service::client::diagnose(&setup, |_| Ok(recs.clone()), |_, _, _| Ok(()))
                .unwrap();
        assert_eq!(info.tag, session_tag(&info.session));
        assert_ne!(info.tag, info.session);
        let tagged = format!("tag=\"{}\"", info.tag);
        wait_log(&["session{", &tagged, "session finished"]);
        wait_log(&["dealer{", &tagged, "session finished"]);
        wait_log(&["diagnose{", &tagged, "session finished"]);
        ids.push(info.session);
    }
    assert_ne!(ids[0], ids[1]);
    for l in logs() {
        for id in &ids {
            assert!(!l.contains(id.as_str()), "a session id was logged: {l}");
        }
    }
}

#[test]
fn a_client_without_a_certificate_is_told_at_once_that_one_is_required() {
    init();
    let d = deploy(Reveal::Label, limits());
    let setup = cryptmed_service::client::ClientSetup {
        security: anonymous(&d.certs),
        ..d.client()
    };
    let e = run(&setup, &records(1)).unwrap_err();
    assert!(
        matches!(&e, ServiceError::Handshake { reason, .. }
            if reason.contains("the provider requires a client certificate and this client presented none")),
        "{e}"
    );
    wait_log(&[
        "session failed",
        "the peer presented no certificate, and one is required",
    ]);
}

/// Every number in `v` (a record, a result or the network with its
/// weights) whose text is long enough not to occur by chance (not `0`, `1`).
fn long_numbers(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(n) => {
            let t = n.to_string();
            if t.len() >= 5 {
                out.push(t);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| long_numbers(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| long_numbers(x, out)),
        _ => {}
    }
}

#[test]
fn the_audit_trail_has_one_line_per_session_and_no_record_share_weight_or_result() {
    use cryptmed_service::audit::{AuditLog, Entry};
    use cryptmed_service::{dealer, provider};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    init();
    let dir = std::env::temp_dir().join(format!("cryptmed-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (dealer_log, provider_log) = (dir.join("dealer.jsonl"), dir.join("provider.jsonl"));
    let certs = certs();
    let stop = Stop(Arc::new(AtomicBool::new(false)));
    let (l, dealer_addr) = listener();
    let (sec, audit, st) = (
        security(&certs, "dealer", true),
        Some(Arc::new(AuditLog::open(&dealer_log).unwrap())),
        stop.0.clone(),
    );
    std::thread::spawn(move || dealer::serve_audited(l, sec, limits(), audit, st));
    let net = network();
    // Function secret sharing: the dealer sends each party about half of
    // its bytes (the keys), so the provider's line shows its dealer link.
    let config = EngineConfig {
        reveal: Reveal::Logits,
        comparison: cryptmed_engine::ComparisonKind::Fss,
        ..EngineConfig::default()
    };
    let model = cryptmed_engine::Model::compile(net.clone(), config).unwrap();
    let digest: String = model
        .architecture_digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let setup = Arc::new(provider::ProviderSetup {
        model,
        public: net.public(),
        dealer: dealer_addr.clone(),
        security: security(&certs, "provider", true),
        limits: limits(),
        backend: provider::Backend::Fixed,
    });
    let (l, provider_addr) = listener();
    let (audit, st) = (
        Some(Arc::new(AuditLog::open(&provider_log).unwrap())),
        stop.0.clone(),
    );
    std::thread::spawn(move || provider::serve_audited(l, setup, audit, st));
    let d = Deployment {
        certs,
        dealer: dealer_addr,
        provider: provider_addr,
        net,
        stop,
    };
    // Every bundled test record in one session; then a client that refuses.
    let recs = records(usize::MAX);
    let mut setup = d.client();
    setup.batch = 64;
    let mut results = Vec::new();
    let ok = cryptmed_service::client::diagnose(
        &setup,
        |_| Ok(recs.clone()),
        |_, p, _| {
            results.extend_from_slice(p);
            Ok(())
        },
    )
    .unwrap();
    assert_correct(&d.net, &recs, &results);
    let mut refused_tag = String::new();
    let refused = cryptmed_service::client::diagnose(
        &d.client(),
        |info| {
            refused_tag = info.tag.clone();
            Err(ServiceError::Input("no".into()))
        },
        |_, _, _| Ok(()),
    );
    assert!(refused.is_err());
    let tagged = format!("tag=\"{refused_tag}\"");
    wait_log(&["session{", &tagged, "session failed", "input"]);
    // The dealer writes its line when its session thread ends.
    wait_log_where("a dealer audit line", |_| {
        std::fs::read_to_string(&dealer_log).is_ok_and(|t| !t.is_empty())
    })
    .unwrap();
    let read = |p: &std::path::Path| -> (String, Vec<Entry>) {
        let text = std::fs::read_to_string(p).unwrap();
        let entries = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (text, entries)
    };
    let (ptext, pent) = read(&provider_log);
    let (dtext, dent) = read(&dealer_log);
    assert_eq!(pent.len(), 2, "{ptext}");
    assert_eq!(dent.len(), 1, "{dtext}");
    let (client, dealer_cn, provider_cn) = (
        "CN=cryptmed client",
        "CN=cryptmed dealer",
        "CN=cryptmed provider",
    );
    let p = &pent[0];
    assert_eq!(
        (p.server.as_str(), p.session.as_deref(), p.outcome.as_str()),
        ("provider", Some(ok.tag.as_str()), "ok")
    );
    assert_eq!(p.peers, [client, dealer_cn]);
    assert_eq!(
        (p.model.as_deref(), p.policy.as_deref()),
        (Some(digest.as_str()), Some("logits"))
    );
    assert_eq!(p.records, recs.len() as u64);
    assert!(p.bytes > 0 && p.error.is_none() && p.time.ends_with('Z'));
    // Both of the provider's links count: its half of the keys is most of
    // the dealer's bytes' other half (the client link alone is under 1%).
    assert!(
        p.bytes > dent[0].bytes / 3,
        "provider {} bytes, dealer {}",
        p.bytes,
        dent[0].bytes
    );
    let q = &pent[1];
    assert_eq!(
        (q.outcome.as_str(), q.error.as_deref(), q.records),
        ("failed", Some("input"), 0)
    );
    assert_ne!(q.session, p.session);
    let e = &dent[0];
    assert_eq!(
        (e.server.as_str(), e.session.as_ref(), e.outcome.as_str()),
        ("dealer", p.session.as_ref(), "ok")
    );
    assert_eq!(e.peers, [provider_cn, client]);
    assert_eq!((e.records, e.model.as_ref()), (p.records, p.model.as_ref()));
    // Nothing else: no session id, no record value, no weight, no result.
    let mut secret = Vec::new();
    long_numbers(&serde_json::to_value(&recs).unwrap(), &mut secret);
    long_numbers(&serde_json::to_value(&d.net).unwrap(), &mut secret);
    long_numbers(&serde_json::to_value(&results).unwrap(), &mut secret);
    assert!(secret.len() > 1000, "{}", secret.len());
    for text in [&ptext, &dtext] {
        assert!(!text.contains(&ok.session), "{text}");
        for s in &secret {
            assert!(!text.contains(s.as_str()), "{s} in {text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_busy_provider_is_waited_out_with_back_off_and_given_up_on_after_retry_for() {
    use cryptmed_service::client::retry_busy;
    use std::time::Duration;
    init();
    let d = deploy(
        Reveal::Label,
        cryptmed_service::Limits {
            max_sessions: 1,
            ..limits()
        },
    );
    let client = security(&d.certs, "client", false);
    // A client that said hello holds the provider's only session slot.
    let mut held = Some(hello_to_provider(&d.provider, &client));
    let recs = records(3);
    // Giving up: the slot stays taken for longer than --retry-for.
    let mut waits = Vec::new();
    let e = retry_busy(
        Duration::from_millis(1500),
        |e, wait| waits.push((e.to_string(), wait)),
        || run(&d.client(), &recs),
    )
    .unwrap_err();
    assert!(e.is_busy(), "{e}");
    assert!(
        e.to_string().contains(
            "the provider is busy: the provider is at its limit of 1 concurrent sessions"
        ),
        "{e}"
    );
    assert!(!waits.is_empty());
    for (msg, wait) in &waits {
        assert!(msg.contains("is busy"), "{msg}");
        assert!(*wait <= Duration::from_millis(1500), "{wait:?}");
    }
    // Waiting it out: the slot frees while the client waits.
    let mut waited = 0;
    let (preds, _) = retry_busy(
        Duration::from_secs(60),
        |_, _| {
            waited += 1;
            held.take();
        },
        || run(&d.client(), &recs),
    )
    .unwrap();
    assert_correct(&d.net, &recs, &preds);
    assert!(waited >= 1);
}
