//! All three roles in one process, on threads over in-memory channels: the
//! engine of `cryptmed bench` and `cryptmed eval`, and of the tests.

use std::time::Duration;

use cryptmed_channel::memory_pair;

use crate::{
    ClientSession, DealerSession, EngineError, Model, Prediction, ProviderSession, Report,
};

/// What a local session produced.
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// One prediction per record, in order.
    pub predictions: Vec<Prediction>,
    /// The provider's report of each batch.
    pub provider: Vec<Report>,
    /// The client's report of each batch.
    pub client: Vec<Report>,
    /// The dealer's report of each batch.
    pub dealer: Vec<Report>,
    /// One-time setup bytes (masked weights).
    pub setup_bytes: u64,
}

/// Runs one session over `records` in batches of `batch`: the provider uses
/// `provider_model` (with weights), the dealer and client `public_model`.
pub fn run_local(
    provider_model: &Model,
    public_model: &Model,
    records: &[Vec<f64>],
    batch: usize,
) -> Result<LocalRun, EngineError> {
    let batch = batch.max(1);
    let timeout = Duration::from_secs(600);
    let (mut dp, mut pd) = memory_pair(timeout);
    let (mut dc, mut cd) = memory_pair(timeout);
    let (mut pc, mut cp) = memory_pair(timeout);
    let sizes: Vec<usize> = records.chunks(batch).map(<[_]>::len).collect();
    std::thread::scope(|s| {
        let sizes_d = sizes.clone();
        let dealer = s.spawn(move || -> Result<Vec<Report>, EngineError> {
            let mut d = DealerSession::new(public_model.clone(), &mut dp, &mut dc)?;
            sizes_d
                .iter()
                .map(|n| d.run_batch(*n, &mut dp, &mut dc))
                .collect()
        });
        let sizes_p = sizes.clone();
        let provider = s.spawn(move || -> Result<(Vec<Report>, u64), EngineError> {
            let mut p = ProviderSession::new(provider_model.clone(), &mut pd, &mut pc)?;
            let reports = sizes_p
                .iter()
                .map(|n| p.run_batch(*n, &mut pd, &mut pc))
                .collect::<Result<_, _>>()?;
            Ok((reports, p.setup_bytes()))
        });
        let client = (|| -> Result<(Vec<Prediction>, Vec<Report>), EngineError> {
            let mut c = ClientSession::new(public_model.clone(), &mut cd, &mut cp)?;
            let mut preds = Vec::with_capacity(records.len());
            let mut reports = Vec::new();
            for chunk in records.chunks(batch) {
                let (p, r) = c.run_batch(chunk, &mut cd, &mut cp)?;
                preds.extend(p);
                reports.push(r);
            }
            Ok((preds, reports))
        })();
        // Drop the client's ends on failure so the other roles see a closed channel, not a hang.
        let client = client.inspect_err(|_| {
            drop(std::mem::replace(&mut cd, memory_pair(timeout).0));
            drop(std::mem::replace(&mut cp, memory_pair(timeout).0));
        });
        // A panicking role is a bug: re-raise its panic rather than dress it up as an error.
        let dealer = dealer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let provider = provider
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        // When several roles fail, the root cause is the one that is not a
        // channel failure (the others then see a closed channel): it is
        // returned as it is, whatever its kind.
        let is_channel = |e: &EngineError| matches!(e, EngineError::Channel { .. });
        let client = match client {
            Err(e) if !is_channel(&e) => return Err(e),
            r => r,
        };
        let provider = match provider {
            Err(e) if !is_channel(&e) => return Err(e),
            r => r,
        };
        let dealer = match dealer {
            Err(e) if !is_channel(&e) => return Err(e),
            r => r,
        };
        let (predictions, client) = client?;
        let (provider, setup_bytes) = provider?;
        Ok(LocalRun {
            predictions,
            provider,
            client,
            dealer: dealer?,
            setup_bytes,
        })
    })
}
