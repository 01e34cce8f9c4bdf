//! The NPY record reader (a flat and an image-shaped model input).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cryptmed_input::npy("fuzz.npy", data, &[30]);
    let _ = cryptmed_input::npy("fuzz.npy", data, &[1, 28, 28]);
});
