//! One place that knows, for every plan step, which protocol deals, takes,
//! and costs its material: the dealer and both parties walk the same
//! *units* (the plan's steps, then the output step) in the same order.

use cryptmed_prep::{Dealer, PrepSource};
use cryptmed_protocols::{
    Comparison, Trace, argmax, clip, linear, mul, pool, relu, reveal, smooth, softmax, symmetric,
    trunc,
};
use cryptmed_ring::Elem;
use cryptmed_ring::kernels::Pool2dGeom;

use crate::plan::{Step, StepKind};
use crate::{Model, Reveal};

/// A unit of material: one plan step, or the output step (argmax, softmax or reveal).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit<'a> {
    /// A step of the plan.
    Step(&'a Step),
    /// The output step the policy asks for.
    Output,
}

/// The units of `model`'s plan in the order all three roles walk them.
pub(crate) fn units(model: &Model) -> impl Iterator<Item = Unit<'_>> {
    model
        .plan
        .steps
        .iter()
        .map(Unit::Step)
        .chain(std::iter::once(Unit::Output))
}

/// Number of units (steps plus the output step).
pub(crate) fn unit_count(model: &Model) -> usize {
    model.plan.steps.len() + 1
}

/// Window sizes of a max pool, repeated for every record of the batch.
pub(crate) fn window_sizes(geom: &Pool2dGeom, batch: usize) -> Vec<usize> {
    let one: Vec<usize> = geom.windows().iter().map(Vec::len).collect();
    (0..batch).flat_map(|_| one.iter().copied()).collect()
}

/// How many bounds a clip step compares with.
fn bounds(min: Option<f64>, max: Option<f64>) -> usize {
    usize::from(min.is_some()) + usize::from(max.is_some())
}

/// Window lists of every record of a batch (record `b`'s indices offset by `b * in_len`).
pub(crate) fn batch_windows(
    windows: &[Vec<usize>],
    in_len: usize,
    batch: usize,
) -> Vec<Vec<usize>> {
    (0..batch)
        .flat_map(|b| {
            windows
                .iter()
                .map(move |w| w.iter().map(|i| i + b * in_len).collect())
        })
        .collect()
}

/// Tables (exp, reciprocal) of the secure softmax.
pub(crate) fn softmax_tables(model: &Model, t: [usize; 2]) -> softmax::Tables<'_> {
    softmax::Tables {
        exp: &model.plan.tables[t[0]],
        reciprocal: &model.plan.tables[t[1]],
    }
}

/// Bits to truncate the logits by before the softmax's exp (down to scale `f`).
pub(crate) fn softmax_shift(model: &Model) -> u32 {
    model.plan.output.scale - model.plan.frac_bits
}

/// A party's material for one unit.
pub(crate) enum Material<C: Comparison> {
    Linear(linear::LinearMaterial),
    Relu(relu::ReluMaterial<C>),
    Clip(clip::ClipMaterial<C>),
    Pool(Vec<pool::LevelMaterial<C>>),
    Trunc(trunc::TruncMaterial),
    Smooth(smooth::SmoothMaterial<C>),
    Symmetric(symmetric::SymmetricMaterial<C>),
    Mul(mul::MulMaterial),
    Argmax(argmax::ArgmaxMaterial<C>),
    Softmax(Box<softmax::SoftmaxMaterial<C>>),
    None,
}

/// Dealer side: the material of one unit for a batch, given the session's weight masks.
pub(crate) fn deal<C: Comparison>(
    cmp: &C,
    model: &Model,
    d: &mut Dealer,
    masks: &[Vec<Elem>],
    batch: usize,
    unit: Unit<'_>,
) {
    let plan = &model.plan;
    let s = match unit {
        Unit::Step(s) => s,
        Unit::Output => return deal_output(cmp, model, d, batch),
    };
    let n = batch * s.len;
    match &s.kind {
        StepKind::Linear { op, layer } => linear::deal(d, op, &masks[*layer], batch),
        StepKind::Relu { shift } => relu::deal(cmp, d, n, *shift),
        StepKind::MaxPool { geom } => pool::deal(cmp, d, &window_sizes(geom, batch)),
        StepKind::Clip { shift, min, max } => clip::deal(cmp, d, n, *shift, bounds(*min, *max)),
        StepKind::Trunc { shift } => trunc::deal(d, n, *shift),
        StepKind::Smooth {
            table,
            shift,
            symmetric: false,
            ..
        } => smooth::deal(cmp, d, n, &plan.tables[*table], *shift),
        StepKind::Smooth {
            table,
            shift,
            symmetric: true,
            ..
        } => symmetric::deal(cmp, d, n, &plan.half_tables[*table], *shift),
        StepKind::Mul => mul::deal(d, n),
        StepKind::SumPool { .. }
        | StepKind::Add { .. }
        | StepKind::Concat { .. }
        | StepKind::Alias => {}
    }
}

fn deal_output<C: Comparison>(cmp: &C, model: &Model, d: &mut Dealer, batch: usize) {
    let o = &model.plan.output;
    match (model.config.reveal, o.softmax) {
        (Reveal::Label, _) => argmax::deal(cmp, d, batch, o.classes),
        (Reveal::Probabilities, Some(t)) => softmax::deal(
            cmp,
            d,
            batch,
            o.classes,
            softmax_shift(model),
            &softmax_tables(model, t),
        ),
        _ => {}
    }
}

/// Party side: mirror of [`deal`]. The client passes its masked weights
/// (and precomputes its linear output shares here, before the record is needed).
pub(crate) fn take<C: Comparison>(
    cmp: &C,
    model: &Model,
    p: &mut dyn PrepSource,
    masked: &[Vec<Elem>],
    batch: usize,
    unit: Unit<'_>,
) -> Material<C> {
    let plan = &model.plan;
    let s = match unit {
        Unit::Step(s) => s,
        Unit::Output => return take_output(cmp, model, p, batch),
    };
    let n = batch * s.len;
    match &s.kind {
        StepKind::Linear { op, layer } => Material::Linear(linear::take(
            p,
            op,
            batch,
            masked.get(*layer).map(Vec::as_slice),
        )),
        StepKind::Relu { shift } => Material::Relu(relu::take(cmp, p, n, *shift)),
        StepKind::MaxPool { geom } => {
            Material::Pool(pool::take(cmp, p, &window_sizes(geom, batch)))
        }
        StepKind::Clip { shift, min, max } => {
            Material::Clip(clip::take(cmp, p, n, *shift, bounds(*min, *max)))
        }
        StepKind::Trunc { .. } => Material::Trunc(trunc::take(p, n)),
        StepKind::Smooth {
            table,
            shift,
            symmetric: false,
            ..
        } => Material::Smooth(smooth::take(cmp, p, n, &plan.tables[*table], *shift)),
        StepKind::Smooth {
            table,
            shift,
            symmetric: true,
            ..
        } => Material::Symmetric(symmetric::take(
            cmp,
            p,
            n,
            &plan.half_tables[*table],
            *shift,
        )),
        StepKind::Mul => Material::Mul(mul::take(p, n)),
        StepKind::SumPool { .. }
        | StepKind::Add { .. }
        | StepKind::Concat { .. }
        | StepKind::Alias => Material::None,
    }
}

fn take_output<C: Comparison>(
    cmp: &C,
    model: &Model,
    p: &mut dyn PrepSource,
    batch: usize,
) -> Material<C> {
    let classes = model.plan.output.classes;
    match (model.config.reveal, model.plan.output.softmax) {
        (Reveal::Label, _) => Material::Argmax(argmax::take(cmp, p, batch, classes)),
        (Reveal::Probabilities, Some(t)) => Material::Softmax(Box::new(softmax::take(
            cmp,
            p,
            batch,
            classes,
            softmax_shift(model),
            &softmax_tables(model, t),
        ))),
        _ => Material::None,
    }
}

/// The online traffic of one unit for a batch.
pub(crate) fn trace<C: Comparison>(cmp: &C, model: &Model, batch: usize, unit: Unit<'_>) -> Trace {
    let plan = &model.plan;
    let s = match unit {
        Unit::Step(s) => s,
        Unit::Output => return output_trace(cmp, model, batch),
    };
    let n = batch * s.len;
    match &s.kind {
        StepKind::Linear { op, .. } => linear::trace(op, batch),
        StepKind::Relu { .. } => relu::trace(cmp, n),
        StepKind::MaxPool { geom } => pool::trace(cmp, &window_sizes(geom, batch)),
        StepKind::Clip { min, max, .. } => clip::trace(cmp, n, bounds(*min, *max)),
        StepKind::Trunc { .. } => trunc::trace(n),
        StepKind::Smooth {
            table,
            shift,
            symmetric: false,
            ..
        } => smooth::trace(cmp, n, &plan.tables[*table], *shift),
        StepKind::Smooth {
            table,
            symmetric: true,
            ..
        } => symmetric::trace(cmp, n, &plan.half_tables[*table]),
        StepKind::Mul => mul::trace(n),
        StepKind::SumPool { .. }
        | StepKind::Add { .. }
        | StepKind::Concat { .. }
        | StepKind::Alias => Trace::default(),
    }
}

fn output_trace<C: Comparison>(cmp: &C, model: &Model, batch: usize) -> Trace {
    let o = &model.plan.output;
    match (model.config.reveal, o.softmax) {
        (Reveal::Label, _) => argmax::trace(cmp, batch, o.classes),
        (Reveal::Probabilities, Some(t)) => softmax::trace(
            cmp,
            batch,
            o.classes,
            softmax_shift(model),
            &softmax_tables(model, t),
        )
        .then(reveal::trace(batch * o.classes)),
        _ => reveal::trace(batch * o.classes),
    }
}

/// The dealer's bytes (to both parties) of one unit for a batch, in closed
/// form: no material is generated, so the dealer can size a batch of a
/// 224x224 network at once.
pub(crate) fn offline_bytes<C: Comparison>(
    cmp: &C,
    model: &Model,
    batch: usize,
    unit: Unit<'_>,
) -> u64 {
    let plan = &model.plan;
    let s = match unit {
        Unit::Step(s) => s,
        Unit::Output => return output_offline_bytes(cmp, model, batch),
    };
    let n = batch * s.len;
    match &s.kind {
        StepKind::Linear { op, .. } => linear::offline_bytes(op, batch),
        StepKind::Relu { shift } => relu::offline_bytes(cmp, n, *shift),
        StepKind::Clip { shift, min, max } => {
            clip::offline_bytes(cmp, n, *shift, bounds(*min, *max))
        }
        StepKind::MaxPool { geom } => {
            let levels: Vec<usize> = pool::level_sizes(&window_sizes(geom, 1))
                .into_iter()
                .map(|m| m * batch)
                .collect();
            pool::levels_offline_bytes(cmp, &levels)
        }
        StepKind::Trunc { .. } => trunc::offline_bytes(n),
        StepKind::Smooth {
            table,
            shift,
            symmetric: false,
            ..
        } => smooth::offline_bytes(cmp, n, &plan.tables[*table], *shift),
        StepKind::Smooth {
            table,
            shift,
            symmetric: true,
            ..
        } => symmetric::offline_bytes(cmp, n, &plan.half_tables[*table], *shift),
        StepKind::Mul => mul::offline_bytes(n),
        StepKind::SumPool { .. }
        | StepKind::Add { .. }
        | StepKind::Concat { .. }
        | StepKind::Alias => 0,
    }
}

fn output_offline_bytes<C: Comparison>(cmp: &C, model: &Model, batch: usize) -> u64 {
    let o = &model.plan.output;
    match (model.config.reveal, o.softmax) {
        (Reveal::Label, _) => argmax::offline_bytes(cmp, batch, o.classes),
        (Reveal::Probabilities, Some(t)) => softmax::offline_bytes(
            cmp,
            batch,
            o.classes,
            softmax_shift(model),
            &softmax_tables(model, t),
        ),
        _ => 0,
    }
}
