//! Inner (decrypted) frames: decoding never panics, and whatever decodes
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zos_netproto::frame::Inner;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Inner::decode(data) {
        let mut out = Vec::new();
        frame.encode_into(&mut out);
        assert_eq!(Inner::decode(&out).expect("re-decodes"), frame);
    }
});
