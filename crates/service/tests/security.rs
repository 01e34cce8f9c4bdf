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
        Ok(Frame::Error { code, message }) => {
            assert_eq!(code, "busy", "{message}");
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
