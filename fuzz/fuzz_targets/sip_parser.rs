//! Fuzzes the SIP parser: no input may panic; any input that parses must print to bytes
//! that parse back to the same message (plus the Content-Length the printer adds when
//! the input had none) and print identically; and every typed value the accessors decode
//! must print to bytes that decode back to the same value.

#![no_main]

use bytes::Bytes;
use sbc_core::sip::{
    Contact, HeaderName, Message, NameAddr, Uri, Via, parse_message, salvage_for_response,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    match parse_message(input.clone()) {
        Ok(message) => {
            let printed = message.to_bytes();
            let reparsed = match parse_message(printed.clone()) {
                Ok(m) => m,
                Err(e) => panic!("printed message does not parse: {e}"),
            };
            assert_eq!(reparsed, with_content_length(&message));
            assert_eq!(reparsed.to_bytes(), printed);
            typed_values_round_trip(&message);
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

/// The message as the printer writes it: with a Content-Length after the last header
/// when it had none.
fn with_content_length(message: &Message) -> Message {
    let mut expected = message.clone();
    if !message.headers().contains(&HeaderName::ContentLength) {
        let length = message.body().len().to_string();
        expected.headers_mut().push(HeaderName::ContentLength, length);
    }
    expected
}

fn typed_values_round_trip(message: &Message) {
    if let Message::Request(request) = message {
        assert_eq!(Uri::decode(&request.uri.to_bytes()).ok(), Some(request.uri.clone()));
    }
    let headers = message.headers();
    for via in headers.vias().unwrap_or_default() {
        assert_eq!(Via::decode(&via.to_bytes()), Ok(via));
    }
    let addresses = [headers.from().ok(), headers.to().ok()];
    let routes = headers.routes().unwrap_or_default();
    let record_routes = headers.record_routes().unwrap_or_default();
    let contacts = match headers.contact() {
        Ok(Some(contact)) => {
            assert_eq!(Contact::decode(&contact.to_bytes()), Ok(contact.clone()));
            match contact {
                Contact::Addresses(addresses) => addresses,
                Contact::Star => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    let all = addresses.into_iter().flatten().chain(routes).chain(record_routes);
    for address in all.chain(contacts) {
        assert_eq!(NameAddr::decode(&address.to_bytes()), Ok(address));
    }
    if let Ok(Some(media_type)) = headers.content_type() {
        let printed = media_type.to_bytes();
        assert_eq!(sbc_core::sip::MediaType::decode(&printed), Ok(media_type));
    }
    if let Ok(cseq) = headers.cseq() {
        assert_eq!(sbc_core::sip::CSeq::decode(&cseq.to_bytes()), Ok(cseq));
    }
    let _ = (headers.require(), headers.supported(), headers.proxy_require());
}
