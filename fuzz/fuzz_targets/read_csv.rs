//! The CSV record reader (30 columns, with and without a label column).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cryptmed_input::csv("fuzz.csv", data, 30, false);
    let _ = cryptmed_input::csv("fuzz.csv", data, 3, true);
});
