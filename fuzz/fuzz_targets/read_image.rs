//! The image decoders: PNG, JPEG and DICOM (the first byte picks one).
#![no_main]

use cryptmed_input::image::decode;
use cryptmed_input::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let format = match pick % 3 {
        0 => Format::Png,
        1 => Format::Jpeg,
        _ => Format::Dicom,
    };
    let _ = decode("fuzz", bytes, format);
});
