//! The public-architecture validator, fed JSON networks as a peer sends
//! them in a model-info or join frame (deserialized, then validated).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(net) = serde_json::from_slice::<cryptmed_model::Network>(data) {
        let _ = cryptmed_model::validate(&net);
    }
});
