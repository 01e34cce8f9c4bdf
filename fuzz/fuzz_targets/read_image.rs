//! The image decoders: PNG, JPEG and DICOM (the first byte picks one).
//!
//! dicom-rs's RLE decoder panics on some malformed segments (an index past
//! its buffer); `cryptmed_input`'s DICOM reader catches that panic and
//! returns an error naming the file (regression test:
//! `a_malformed_rle_dicom_found_by_fuzzing_is_an_error_not_a_crash`). So a
//! panic raised inside dicom-rs unwinds to that catch here too; any other
//! panic, or one that escapes the reader, aborts as a crash.
#![no_main]

use cryptmed_input::image::decode;
use cryptmed_input::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        let crash = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dicom_rs = info
                .location()
                .is_some_and(|l| l.file().contains("/dicom-"));
            if !in_dicom_rs {
                crash(info);
            }
        }));
    },
    |data: &[u8]| {
        let Some((&pick, bytes)) = data.split_first() else {
            return;
        };
        let format = match pick % 3 {
            0 => Format::Png,
            1 => Format::Jpeg,
            _ => Format::Dicom,
        };
        let _ = decode("fuzz", bytes, format);
    }
);
