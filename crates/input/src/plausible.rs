//! Plausibility: every value within its column's plausible range, as the
//! model's public schema states it, or the record is refused (or, when the
//! caller allows it, diagnosed and marked).

use cryptmed_model::FeatureSchema;

use super::{InputError, Records};

/// A value outside its column's plausible range, let through by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Implausible {
    /// The record, counted from 0.
    pub record: usize,
    /// The column's name.
    pub name: String,
    /// The value.
    pub value: f64,
    /// The plausible range.
    pub range: [f64; 2],
}

/// Checks every value of `records` against `schema`'s plausible ranges
/// (columns without one pass). A value outside is refused with the record,
/// the column's name, the value and the range, unless `allow`: then every
/// such value is returned, in record order, for the results to note.
pub fn check_plausible(
    file: &str,
    records: &Records,
    schema: Option<&FeatureSchema>,
    allow: bool,
) -> Result<Vec<Implausible>, InputError> {
    let Some(schema) = schema else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for (k, rec) in records.records.iter().enumerate() {
        for (c, (v, f)) in rec.iter().zip(&schema.features).enumerate() {
            let Some([lo, hi]) = f.range else { continue };
            if (lo..=hi).contains(v) {
                continue;
            }
            if !allow {
                let unit = f.unit.as_ref().map(|u| format!(" {u}")).unwrap_or_default();
                return Err(records.value_error(
                    file,
                    k,
                    c + 1,
                    format!(
                        "{} = {v} is outside its plausible range [{lo}, {hi}]{unit}; \
                         --allow-implausible diagnoses it anyway (and marks its result)",
                        f.name
                    ),
                ));
            }
            found.push(Implausible {
                record: k,
                name: f.name.clone(),
                value: *v,
                range: [lo, hi],
            });
        }
    }
    Ok(found)
}
