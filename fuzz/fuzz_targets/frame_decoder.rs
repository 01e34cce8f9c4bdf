//! The control-frame decoder, fed any body a peer could send (the length
//! prefix is bounded by `wire::recv` before anything is allocated).
#![no_main]

use cryptmed_service::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode(data);
});
