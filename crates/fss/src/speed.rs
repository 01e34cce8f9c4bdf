//! How fast this machine runs the DCF code, measured once per process: what
//! a latency prediction needs to weigh function secret sharing's local work
//! (most of a microsecond per comparison) against rounds on a link.

use std::sync::OnceLock;
use std::time::Instant;

use crate::{Dcf, Ring};

/// Seconds per byte of key material, one thread: evaluating a key at one
/// point takes about `eval * key_bytes`, generating a pair of keys about
/// `keygen * key_bytes` (the work of both walks through the tree scales
/// with the key's correction words).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    /// Seconds per key byte to evaluate a key at one point.
    pub eval: f64,
    /// Seconds per key byte to generate a pair of keys (both parties').
    pub keygen: f64,
}

/// Keys timed by [`Speed::measured`]: below the threshold at which the DCF
/// code spreads work over cores, so one thread is measured.
const KEYS: usize = 512;

impl Speed {
    /// This machine's speed, measured on the first call (about 5 ms: the
    /// best of three runs of keygen and evaluation of 512 keys with the
    /// 3-element payloads of a ReLU with truncation), then remembered.
    pub fn measured() -> Speed {
        static SPEED: OnceLock<Speed> = OnceLock::new();
        *SPEED.get_or_init(measure)
    }
}

fn measure() -> Speed {
    let dcf = Dcf::<Ring>::new(63, 3);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut roots = || {
        (0..KEYS)
            .map(|_| u128::from(next()) << 64 | u128::from(next()))
            .collect::<Vec<u128>>()
    };
    let (r0, r1) = (roots(), roots());
    let alphas: Vec<u64> = r0.iter().map(|r| (*r as u64) >> 1).collect();
    let points: Vec<u64> = r1.iter().map(|r| (*r as u64) >> 1).collect();
    let betas = vec![1u64; 3 * KEYS];
    let bytes = (KEYS * dcf.key_bytes()) as f64;
    let (mut keygen, mut eval) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let t = Instant::now();
        let cws = dcf.keygen([&r0, &r1], &alphas, &betas);
        keygen = keygen.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let out = dcf.eval(0, &r0, &cws, &points, 1);
        eval = eval.min(t.elapsed().as_secs_f64());
        std::hint::black_box(out);
    }
    Speed {
        eval: eval / bytes,
        keygen: keygen / bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_speed_is_positive_finite_and_remembered() {
        let s = Speed::measured();
        for v in [s.eval, s.keygen] {
            assert!(v.is_finite() && v > 0.0, "{s:?}");
        }
        // Far below a millisecond per byte on any machine that runs the suite.
        assert!(s.eval < 1e-6 && s.keygen < 1e-6, "{s:?}");
        assert_eq!(Speed::measured(), s);
    }
}
