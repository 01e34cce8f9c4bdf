//! The client: diagnoses records with a remote provider and dealer.

use cryptmed_engine::{ClientSession, EngineConfig, Model, Prediction, Report, Reveal};
use cryptmed_model::Network;

use crate::wire::{Frame, VERSION};
use crate::{Limits, Link, Security, ServiceError, expect, hex, refuse, send, tls};

/// Where and how to diagnose.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    /// The provider (`host:port`).
    pub server: String,
    /// The dealer this client trusts (`host:port`).
    pub dealer: String,
    /// TLS (the CA, and optionally a client certificate).
    pub security: Security,
    /// Limits.
    pub limits: Limits,
    /// Records per batch (rounds are shared within a batch).
    pub batch: usize,
    /// The output policy the client insists on (refused if the provider's differs).
    pub reveal: Option<Reveal>,
}

/// What the handshake told the client.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The provider's output policy.
    pub reveal: Reveal,
    /// Class names, if the model has them.
    pub class_names: Option<Vec<String>>,
    /// The public architecture.
    pub network: Network,
}

/// Runs one session. After the handshake, `records(info)` supplies the
/// records (so they can be loaded and checked against the architecture the
/// provider announced); `on_batch(first, predictions, report)` is called
/// after every batch, so results can be written as they come and survive a
/// later failure.
pub fn diagnose(
    setup: &ClientSetup,
    records: impl FnOnce(&SessionInfo) -> Result<Vec<Vec<f64>>, ServiceError>,
    mut on_batch: impl FnMut(usize, &[Prediction], &Report) -> Result<(), ServiceError>,
) -> Result<SessionInfo, ServiceError> {
    let limits = &setup.limits;
    let conn = tls::connect(&setup.server, &setup.security, limits.timeouts)?;
    let mut link = Link::new(conn.stream);
    send(
        &mut link,
        &Frame::Hello {
            version: VERSION,
            reveal: setup.reveal.map(|r| r.name().to_string()),
        },
        "hello",
    )?;
    let (session, network_json, config_json, digest, class_names) =
        match expect(&mut link, limits, "provider", "model info")? {
            Frame::ModelInfo {
                version,
                session,
                network,
                config,
                digest,
                class_names,
            } => {
                if version != VERSION {
                    let e = ServiceError::Mismatch {
                        what: "version",
                        ours: VERSION.to_string(),
                        theirs: version.to_string(),
                    };
                    refuse(&mut link, &e);
                    return Err(e);
                }
                (session, network, config, digest, class_names)
            }
            other => {
                return Err(ServiceError::Unexpected {
                    during: "model info".into(),
                    expected: "model_info",
                    got: other.name(),
                });
            }
        };
    let network: Network = serde_json::from_value(network_json.clone())
        .map_err(|e| ServiceError::Config(format!("the provider's architecture: {e}")))?;
    let config: EngineConfig = serde_json::from_value(config_json.clone())
        .map_err(|e| ServiceError::Config(format!("the provider's configuration: {e}")))?;
    let model = Model::compile(network.clone(), config)?;
    let ours = hex(&model.architecture_digest());
    if ours != digest {
        let e = ServiceError::Mismatch {
            what: "digest",
            ours,
            theirs: digest,
        };
        refuse(&mut link, &e);
        return Err(e);
    }
    let info = SessionInfo {
        reveal: config.reveal,
        class_names,
        network,
    };
    let records = match records(&info) {
        Ok(r) => r,
        Err(e) => {
            refuse(&mut link, &e);
            return Err(e);
        }
    };

    let conn = tls::connect(&setup.dealer, &setup.security, limits.timeouts)?;
    let dealer_fp = conn.peer;
    let mut dealer = Link::new(conn.stream);
    send(
        &mut dealer,
        &Frame::Join {
            version: VERSION,
            role: "client".into(),
            session,
            network: network_json,
            config: config_json,
            digest: ours,
        },
        "join",
    )?;
    match expect(&mut dealer, limits, "dealer", "pairing")? {
        Frame::Paired => {}
        other => {
            return Err(ServiceError::Unexpected {
                during: "pairing".into(),
                expected: "paired",
                got: other.name(),
            });
        }
    }
    send(
        &mut link,
        &Frame::DealerIdentity {
            fingerprint: dealer_fp.clone(),
        },
        "dealer identity",
    )?;
    match expect(&mut link, limits, "provider", "dealer identity")? {
        Frame::DealerIdentity { fingerprint } if fingerprint == dealer_fp => {}
        Frame::DealerIdentity { fingerprint } => {
            let e = ServiceError::Mismatch {
                what: "dealer",
                ours: dealer_fp,
                theirs: fingerprint,
            };
            refuse(&mut link, &e);
            return Err(e);
        }
        other => {
            return Err(ServiceError::Unexpected {
                during: "dealer identity".into(),
                expected: "dealer_identity",
                got: other.name(),
            });
        }
    }
    let mut party = ClientSession::new(model, &mut dealer, &mut link)?;
    let batch = setup.batch.clamp(1, limits.max_batch);
    for (i, chunk) in records.chunks(batch).enumerate() {
        let frame = Frame::Batch {
            size: chunk.len() as u64,
        };
        send(&mut link, &frame, "batch")?;
        send(&mut dealer, &frame, "batch")?;
        let (preds, report) = party.run_batch(chunk, &mut dealer, &mut link)?;
        on_batch(i * batch, &preds, &report)?;
    }
    send(&mut link, &Frame::Done, "done")?;
    send(&mut dealer, &Frame::Done, "done")?;
    Ok(info)
}
