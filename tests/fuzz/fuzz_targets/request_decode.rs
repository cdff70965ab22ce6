//! Any bytes as a request frame: decoding must return, never panic or abort, whatever the
//! frame claims (the broker's own allocator policy is installed, as in `fjord`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../../core/fjord/src/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

fuzz_target!(|data: &[u8]| {
    let _ = fjord_broker::decode_request_frame(bytes::Bytes::copy_from_slice(data));
});
