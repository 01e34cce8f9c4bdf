//! Fixed-point encoding of reals into the ring.
//!
//! A real `v` is stored as the integer `round(v * 2^f)` in two's complement,
//! with `f` fractional bits (default 16). Encoding rounds to nearest and
//! refuses values whose encoding would not stay clear of the top two bits of
//! the ring (`|v| * 2^f >= 2^62`), because the secure truncation is exact only
//! below that bound.

use serde::{Deserialize, Serialize};

use crate::Elem;

/// Why a real number could not be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FixedError {
    /// The value is NaN or infinite.
    #[error("value {0} is not a finite number")]
    NotFinite(f64),
    /// The value is too large in magnitude for the ring at this precision.
    #[error(
        "value {value} is outside the fixed-point range (|v| must be below {limit} with {frac_bits} fractional bits)"
    )]
    OutOfRange {
        /// The offending value.
        value: f64,
        /// The exclusive magnitude limit.
        limit: f64,
        /// The fractional bits in force.
        frac_bits: u32,
    },
    /// The requested number of fractional bits is not supported.
    #[error("{0} fractional bits is not supported (use 1 to 30)")]
    BadPrecision(u32),
}

/// Fixed-point format: how many of the 64 bits are fractional. Deserializing
/// checks the range as [`FixedPoint::new`] does, so a format read from a
/// peer or a file is valid like any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FixedPointRepr")]
pub struct FixedPoint {
    frac_bits: u32,
}

/// The serialized form of [`FixedPoint`], before its range check.
#[derive(Deserialize)]
struct FixedPointRepr {
    frac_bits: u32,
}

impl TryFrom<FixedPointRepr> for FixedPoint {
    type Error = FixedError;

    fn try_from(r: FixedPointRepr) -> Result<Self, FixedError> {
        FixedPoint::new(r.frac_bits)
    }
}

impl Default for FixedPoint {
    fn default() -> Self {
        Self { frac_bits: 16 }
    }
}

impl FixedPoint {
    /// The largest encoded magnitude allowed: `2^62` (exclusive).
    pub const ENCODED_LIMIT: f64 = 4_611_686_018_427_387_904.0;

    /// A format with `frac_bits` fractional bits (1 to 30).
    pub fn new(frac_bits: u32) -> Result<Self, FixedError> {
        if !(1..=30).contains(&frac_bits) {
            return Err(FixedError::BadPrecision(frac_bits));
        }
        Ok(Self { frac_bits })
    }

    /// Number of fractional bits.
    pub fn frac_bits(self) -> u32 {
        self.frac_bits
    }

    /// `2^f` as a real.
    pub fn scale(self) -> f64 {
        (1u64 << self.frac_bits) as f64
    }

    /// The smallest positive representable value, `2^-f`.
    pub fn ulp(self) -> f64 {
        1.0 / self.scale()
    }

    /// Exclusive magnitude limit of encodable reals, `2^(62 - f)`.
    pub fn limit(self) -> f64 {
        Self::ENCODED_LIMIT / self.scale()
    }

    /// Encodes `v` at this format's scale, rounding to nearest.
    pub fn encode(self, v: f64) -> Result<Elem, FixedError> {
        self.encode_at(v, self.frac_bits)
    }

    /// Encodes `v` with `bits` fractional bits (for constants kept at a finer
    /// scale than the data, such as polynomial coefficients).
    pub fn encode_at(self, v: f64, bits: u32) -> Result<Elem, FixedError> {
        if !v.is_finite() {
            return Err(FixedError::NotFinite(v));
        }
        let scaled = (v * (2f64).powi(bits as i32)).round();
        if scaled.abs() >= Self::ENCODED_LIMIT {
            return Err(FixedError::OutOfRange {
                value: v,
                limit: Self::ENCODED_LIMIT / (2f64).powi(bits as i32),
                frac_bits: bits,
            });
        }
        Ok(scaled as i64 as Elem)
    }

    /// Decodes an element at this format's scale.
    pub fn decode(self, x: Elem) -> f64 {
        self.decode_at(x, self.frac_bits)
    }

    /// Decodes an element that carries `bits` fractional bits.
    pub fn decode_at(self, x: Elem, bits: u32) -> f64 {
        (x as i64) as f64 / (2f64).powi(bits as i32)
    }

    /// Encodes a slice, failing on the first value that cannot be encoded
    /// and reporting its index.
    pub fn encode_all(self, vs: &[f64]) -> Result<Vec<Elem>, (usize, FixedError)> {
        vs.iter()
            .enumerate()
            .map(|(i, v)| self.encode(*v).map_err(|e| (i, e)))
            .collect()
    }

    /// Decodes a slice.
    pub fn decode_all(self, xs: &[Elem]) -> Vec<f64> {
        xs.iter().map(|x| self.decode(*x)).collect()
    }
}

/// Arithmetic right shift by `k` bits of a two's-complement element (floor division by `2^k`).
#[inline]
pub fn shift_floor(x: Elem, k: u32) -> Elem {
    ((x as i64) >> k) as Elem
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn deserializing_checks_the_range() {
        let read = |bits: u32| {
            serde_json::from_value::<FixedPoint>(serde_json::json!({ "frac_bits": bits }))
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(16), Ok(FixedPoint::default()));
        assert_eq!(read(1).map(FixedPoint::frac_bits), Ok(1));
        assert_eq!(read(30).map(FixedPoint::frac_bits), Ok(30));
        for bad in [0, 31, 200] {
            let e = read(bad).unwrap_err();
            assert!(
                e.contains(&format!("{bad} fractional bits is not supported")),
                "{e}"
            );
        }
        let fp = FixedPoint::new(20).unwrap();
        assert_eq!(
            serde_json::from_value::<FixedPoint>(serde_json::to_value(fp).unwrap()).unwrap(),
            fp
        );
    }

    #[test]
    fn rounds_to_nearest() {
        let fp = FixedPoint::default();
        assert_eq!(fp.encode(1.0).unwrap(), 65536);
        assert_eq!(fp.encode(-1.0).unwrap(), (-65536i64) as u64);
        // half an ulp rounds away from zero, just below rounds down
        assert_eq!(fp.encode(1.5 / 65536.0).unwrap(), 2);
        assert_eq!(fp.encode(1.49 / 65536.0).unwrap(), 1);
        assert_eq!(fp.encode(-1.49 / 65536.0).unwrap(), (-1i64) as u64);
        assert_eq!(fp.encode(0.0).unwrap(), 0);
    }

    #[test]
    fn refuses_out_of_range_and_non_finite() {
        let fp = FixedPoint::default();
        let lim = fp.limit();
        assert!(matches!(fp.encode(lim), Err(FixedError::OutOfRange { .. })));
        assert!(matches!(
            fp.encode(-lim),
            Err(FixedError::OutOfRange { .. })
        ));
        assert!(fp.encode(lim * 0.99).is_ok());
        assert!(matches!(fp.encode(f64::NAN), Err(FixedError::NotFinite(_))));
        assert!(matches!(
            fp.encode(f64::INFINITY),
            Err(FixedError::NotFinite(_))
        ));
        let err = fp.encode(1e20).unwrap_err().to_string();
        assert!(err.contains("outside the fixed-point range"), "{err}");
        assert!(FixedPoint::new(0).is_err());
        assert!(FixedPoint::new(31).is_err());
    }

    #[test]
    fn shift_floor_is_floor_division() {
        assert_eq!(shift_floor((-1i64) as u64, 4) as i64, -1);
        assert_eq!(shift_floor((-16i64) as u64, 4) as i64, -1);
        assert_eq!(shift_floor((-17i64) as u64, 4) as i64, -2);
        assert_eq!(shift_floor(17, 4), 1);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode_within_half_ulp(v in -1.0e9f64..1.0e9, f in 1u32..=30) {
            let fp = FixedPoint::new(f).unwrap();
            prop_assume!(v.abs() < fp.limit());
            let back = fp.decode(fp.encode(v).unwrap());
            prop_assert!((back - v).abs() <= fp.ulp() / 2.0 + v.abs() * 1e-15);
        }
    }
}
