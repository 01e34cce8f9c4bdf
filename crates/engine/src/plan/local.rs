//! The steps without a protocol: each party applies them to its own shares
//! (they are linear with public coefficients), and the fixed-point reference
//! to clear values. One definition serves both.

use cryptmed_ring::Elem;
use cryptmed_ring::kernels::Pool2dGeom;

use super::StepKind;

/// True for a step every party computes alone (no material, no traffic).
pub(crate) fn is_local(kind: &StepKind) -> bool {
    matches!(
        kind,
        StepKind::SumPool { .. } | StepKind::Add { .. } | StepKind::Concat { .. } | StepKind::Alias
    )
}

/// Applies the local step `kind` to `batch` records: `inputs[k]` holds
/// input `k` of every record, each `in_lens[k]` long. `None` for a step
/// that needs a protocol.
pub(crate) fn apply(
    kind: &StepKind,
    inputs: &[&[Elem]],
    in_lens: &[usize],
    batch: usize,
) -> Option<Vec<Elem>> {
    let x = inputs[0];
    Some(match kind {
        StepKind::SumPool { geom, multiplier } => {
            sum_pool(geom, multiplier.as_deref(), x, in_lens[0], batch)
        }
        StepKind::Add { align } => x
            .iter()
            .zip(inputs[1])
            .map(|(a, b)| (a << align[0]).wrapping_add(b << align[1]))
            .collect(),
        StepKind::Concat { align } => {
            let mut out = Vec::with_capacity(in_lens.iter().sum::<usize>() * batch);
            for b in 0..batch {
                for ((v, len), shift) in inputs.iter().zip(in_lens).zip(align) {
                    out.extend(v[b * len..(b + 1) * len].iter().map(|e| e << shift));
                }
            }
            out
        }
        StepKind::Alias => x.to_vec(),
        _ => return None,
    })
}

/// Window sums of every record, each times its position's multiplier.
fn sum_pool(
    geom: &Pool2dGeom,
    multiplier: Option<&[Elem]>,
    x: &[Elem],
    in_len: usize,
    batch: usize,
) -> Vec<Elem> {
    let windows = geom.windows();
    let positions = geom.out_h() * geom.out_w();
    let mut out = Vec::with_capacity(windows.len() * batch);
    for b in 0..batch {
        let rec = &x[b * in_len..(b + 1) * in_len];
        for (i, w) in windows.iter().enumerate() {
            let sum = w.iter().fold(0u64, |a, j| a.wrapping_add(rec[*j]));
            out.push(match multiplier {
                Some(m) => sum.wrapping_mul(m[i % positions]),
                None => sum,
            });
        }
    }
    out
}
