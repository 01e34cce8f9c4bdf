//! The three roles over real TLS on loopback: diagnoses equal the plaintext
//! model under every output policy, with many clients at once.

mod common;

use std::sync::Arc;

use common::*;
use cryptmed_engine::Reveal;
use cryptmed_model::reference;

#[test]
fn every_policy_matches_plaintext_over_tls() {
    init();
    let recs = records(9);
    for reveal in [Reveal::Label, Reveal::Probabilities, Reveal::Logits] {
        let d = deploy(reveal, limits());
        let (preds, report) = run(&d.client(), &recs).unwrap();
        assert_correct(&d.net, &recs, &preds);
        for (x, p) in recs.iter().zip(&preds) {
            let want = reference::evaluate(&d.net, x);
            match reveal {
                Reveal::Label => assert!(p.logits.is_none() && p.probabilities.is_none()),
                Reveal::Logits => {
                    for (a, b) in p.logits.as_ref().unwrap().iter().zip(&want) {
                        assert!((a - b).abs() < 1e-2, "{a} {b}");
                    }
                }
                Reveal::Probabilities => {
                    let p = p.probabilities.as_ref().unwrap();
                    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-2, "{p:?}");
                }
            }
        }
        assert!(report.dealer_session_bytes > 0 && report.dealer_batch_bytes > 0);
    }
    assert!(panics().is_empty(), "{:?}", panics());
}

#[test]
fn thirty_two_concurrent_clients_are_each_served_correctly() {
    init();
    let d = Arc::new(deploy(Reveal::Logits, limits()));
    serve_concurrently(&d, 32, &records(3));
}
