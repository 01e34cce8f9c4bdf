//! The plaintext reference in the engine's own fixed-point arithmetic: the
//! same plan, scales and (floor) truncations as the secure run, in the clear.
//! The secure result differs from it only by the truncations' one-unit
//! round-ups.

use cryptmed_ring::Elem;
use cryptmed_ring::fixed::shift_floor;

use crate::plan::{StepKind, encode_weights, local};
use crate::session::encode_records;
use crate::{EngineError, Model};

pub(crate) fn evaluate(model: &Model, input: &[f64]) -> Result<Vec<f64>, EngineError> {
    let fp = model.config.fixed;
    let plan = &model.plan;
    let mut values: Vec<Vec<Elem>> = vec![Vec::new(); plan.value_len.len()];
    values[0] = encode_records(model, model.input_limits(), 0, &[input.to_vec()])?;
    for s in &plan.steps {
        let x = &values[s.inputs[0]];
        let y: Vec<Elem> = match &s.kind {
            StepKind::Linear { op, layer } => {
                let l = &plan.linear[*layer];
                let w = encode_weights(fp, l).map_err(|(i, e)| {
                    EngineError::Encoding(format!("layer {} weight {i}: {e}", l.node))
                })?;
                let mut y = op.apply(&w, x);
                if let Some(b) = &l.bias {
                    let per = y.len() / b.len();
                    for (i, v) in y.iter_mut().enumerate() {
                        let bv = fp.encode_at(b[i / per], l.bias_scale).map_err(|e| {
                            EngineError::Encoding(format!("layer {} bias: {e}", l.node))
                        })?;
                        *v = v.wrapping_add(bv);
                    }
                }
                y
            }
            StepKind::Relu { shift } => x
                .iter()
                .map(|v| (shift_floor(*v, *shift) as i64).max(0) as Elem)
                .collect(),
            StepKind::Smooth {
                table,
                shift,
                symmetric: false,
                ..
            } => x
                .iter()
                .map(|v| plan.tables[*table].eval_shifted(*v as i64, *shift, false) as Elem)
                .collect(),
            StepKind::Smooth {
                table,
                shift,
                symmetric: true,
                ..
            } => x
                .iter()
                .map(|v| plan.half_tables[*table].eval_shifted(*v as i64, *shift, false) as Elem)
                .collect(),
            StepKind::MaxPool { geom } => geom
                .windows()
                .iter()
                .map(|w| w.iter().map(|i| x[*i] as i64).max().unwrap_or(0) as Elem)
                .collect(),
            StepKind::Clip { shift, min, max } => {
                let at_f = |v: f64| fp.encode(v).map(|e| e as i64);
                let (lo, hi) = (
                    min.map(at_f).transpose().map_err(clip_bound)?,
                    max.map(at_f).transpose().map_err(clip_bound)?,
                );
                x.iter()
                    .map(|v| {
                        let t = shift_floor(*v, *shift) as i64;
                        let t = lo.map_or(t, |l| t.max(l));
                        hi.map_or(t, |h| t.min(h)) as Elem
                    })
                    .collect()
            }
            StepKind::Trunc { shift } => x.iter().map(|v| shift_floor(*v, *shift)).collect(),
            StepKind::Mul => x
                .iter()
                .zip(&values[s.inputs[1]])
                .map(|(a, b)| a.wrapping_mul(*b))
                .collect(),
            local => {
                let ins: Vec<&[Elem]> = s.inputs.iter().map(|v| values[*v].as_slice()).collect();
                let lens: Vec<usize> = s.inputs.iter().map(|v| plan.value_len[*v]).collect();
                local::apply(local, &ins, &lens, 1).unwrap_or_default()
            }
        };
        values[s.output] = y;
    }
    let o = &plan.output;
    let out = match o.binary {
        true => crate::session::binary_pair(&values[o.value], true, false),
        false => std::mem::take(&mut values[o.value]),
    };
    Ok(out.iter().map(|v| fp.decode_at(*v, o.scale)).collect())
}

fn clip_bound(e: cryptmed_ring::FixedError) -> EngineError {
    EngineError::Encoding(format!("clip bound: {e}"))
}
