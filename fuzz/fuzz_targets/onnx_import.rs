//! The ONNX importer, fed arbitrary bytes as a model file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cryptmed_model::onnx::load_bytes(data, "fuzz.onnx");
});
