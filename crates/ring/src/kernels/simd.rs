//! Runs a kernel compiled for the widest vector instructions this CPU has.
//!
//! The kernels are plain safe Rust that the compiler vectorizes. Built for
//! the baseline x86-64 target (SSE2) it has no 64-bit vector multiply, so
//! the ring's wrapping product stays scalar; compiled with AVX-512
//! (`vpmullq`) the same micro-kernel ran 8x faster on one core of this
//! project's machine (6 against 49 G multiply-adds per second) and a whole
//! 3x3 layer 4.5x (the `by instruction set` group of
//! `cargo bench -p cryptmed-ring --bench kernels`). This module compiles
//! each [`Kernel`] a second and third time with AVX2 and AVX-512 enabled
//! and picks one at run time.
//!
//! It holds the crate's only `unsafe`: calling a `#[target_feature]`
//! function, which is sound exactly when the CPU has the features; each
//! call sits right behind the run-time check of the same features.
#![allow(unsafe_code)]

/// A unit of kernel work, compiled once per instruction set.
///
/// Implementations mark `run` `#[inline(always)]`, so that its body (and
/// whatever `#[inline(always)]` helpers it calls) is generated inside each
/// instruction-set wrapper below rather than once for the baseline.
pub(crate) trait Kernel {
    /// What the work produces.
    type Output;
    /// Does the work.
    fn run(self) -> Self::Output;
}

/// An instruction set the kernels are compiled for. The kernels pick
/// [`Isa::best`] themselves; the `_on` entry points take one, so that
/// benchmarks and tests can compare or check each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// The target's baseline (SSE2 on x86-64): scalar 64-bit products.
    Baseline,
    /// AVX2: wider vectors, 64-bit products emulated from 32-bit ones.
    Avx2,
    /// AVX-512 F/DQ/VL: native 64-bit vector products (`vpmullq`).
    Avx512,
}

impl Isa {
    /// The widest instruction set this CPU has.
    pub fn best() -> Isa {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|isa| isa.detected())
            .unwrap_or(Isa::Baseline)
    }

    /// Every instruction set this CPU has, narrowest first (tests run
    /// each, so every compiled variant is checked on the machine at hand).
    pub fn available() -> Vec<Isa> {
        [Isa::Baseline, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.detected())
            .collect()
    }

    /// True when the CPU has this instruction set.
    fn detected(self) -> bool {
        match self {
            Isa::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Runs `kernel` compiled for `isa` (for the baseline when the CPU lacks it).
pub(crate) fn run<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if isa == Isa::Avx512 && isa.detected() {
            // SAFETY: the CPU has avx512f, avx512dq and avx512vl (checked just above).
            return unsafe { x86::avx512(kernel) };
        }
        if isa == Isa::Avx2 && isa.detected() {
            // SAFETY: the CPU has avx2 (checked just above).
            return unsafe { x86::avx2(kernel) };
        }
    }
    let _ = isa;
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernel;

    /// `kernel.run()` compiled with AVX-512.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    pub(super) fn avx512<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }

    /// `kernel.run()` compiled with AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) fn avx2<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }
}
