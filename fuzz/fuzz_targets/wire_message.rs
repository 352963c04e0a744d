//! Control-channel messages: decoding never panics; decoded messages
//! round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zos_netproto::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = wire::decode(data) {
        assert_eq!(wire::decode(&wire::encode(&msg)).expect("re-decodes"), msg);
    }
});
