//! Local control requests (JSON lines from any local client of the socket):
//! parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zos_netproto::control::Request;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Request>(data);
});
