//! The IDX (MNIST) record and label readers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cryptmed_input::idx("fuzz.idx", data, &[1, 28, 28]);
    let _ = cryptmed_input::idx_labels("fuzz.idx", data);
});
