//! Fuzzes the SIP parser: no input may panic, and any input that parses must print to
//! bytes that parse back to the same message and print identically.

#![no_main]

use bytes::Bytes;
use sbc_core::sip::{parse_message, salvage_for_response};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    match parse_message(input.clone()) {
        Ok(message) => {
            let printed = message.to_bytes();
            let reparsed = match parse_message(printed.clone()) {
                Ok(m) => m,
                Err(e) => panic!("printed message does not parse: {e}"),
            };
            // Content-Length is added by the printer when the input had none.
            if message.headers().content_length().ok().flatten().is_some() {
                assert_eq!(reparsed, message);
            }
            assert_eq!(reparsed.to_bytes(), printed);
            // The typed accessors must not panic either.
            let headers = message.headers();
            let _ = (headers.vias(), headers.from(), headers.to(), headers.contact());
            let _ = (headers.routes(), headers.record_routes(), headers.content_type());
            let _ = (headers.require(), headers.supported(), headers.proxy_require());
        }
        Err(error) => {
            let _ = (error.name(), error.status(), error.reason());
            if let Some(salvage) = salvage_for_response(&input) {
                let response = salvage.make_response(error.status(), error.reason(), Some("t"));
                let _ = response.to_bytes();
            }
        }
    }
});
