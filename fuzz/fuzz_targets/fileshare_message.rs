//! File-service messages in both directions: decoding never panics;
//! decoded messages re-encode to the same bytes' meaning (round-trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zos_fileshare::proto;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = proto::decode_client(data) {
        assert_eq!(proto::decode_client(&proto::encode(&msg)).expect("re-decodes"), msg);
    }
    if let Ok(msg) = proto::decode_server(data) {
        assert_eq!(proto::decode_server(&proto::encode(&msg)).expect("re-decodes"), msg);
    }
});
