//! Approximations of smooth functions (placeholder; see issue 3).
