//! Parses arbitrary bytes as what STIR/SHAKEN reads from the network: Identity header
//! values (one or a comma-separated list), PASSporT tokens, certificate URLs and the
//! TNAuthList extension. Whatever parses must print to something that parses to the
//! same value: an Identity header prints and re-parses equal; a PASSporT's header and
//! claims re-encode canonically to a token that parses to the same PASSporT.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sbc_core::identity::header::IdentityHeader;
use sbc_core::identity::passport::{Passport, SignedPassport};
use sbc_core::identity::tnauth::TnAuthList;
use sbc_core::identity::url;
use sbc_core::sip::{HeaderName, Headers};

fn passport(token: &str) {
    let Ok(signed) = SignedPassport::parse(token) else {
        return;
    };
    assert_eq!(signed.token(), token, "a parsed token prints back unchanged");
    let _ = signed.passport.check_shaken();
    // Re-encoded canonically, it parses to the same header and claims.
    let canonical = SignedPassport {
        signing_input: signed.passport.signing_input(),
        passport: signed.passport.clone(),
        signature: signed.signature.clone(),
    };
    let again = match SignedPassport::parse(&canonical.token()) {
        Ok(again) => again,
        Err(error) => panic!("canonical form does not parse: {error}\n{}", canonical.token()),
    };
    assert_eq!(again.passport, signed.passport);
    let compact = SignedPassport::from_compact(&signed.compact_token(), Passport::clone(&signed.passport));
    assert_eq!(compact.map(|c| c.signature), Ok(signed.signature));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = TnAuthList::from_der(data) {
        assert_eq!(TnAuthList::from_der(&list.to_der()), Ok(list));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(header) = IdentityHeader::parse(text) {
        let printed = header.to_string();
        let again = IdentityHeader::parse(&printed).expect("a printed Identity header parses");
        assert_eq!(again.token, header.token);
        assert_eq!(again.info, header.info);
        assert_eq!(again.alg, header.alg);
        assert_eq!(again.ppt, header.ppt);
        passport(&header.token);
    }
    passport(text);
    let mut headers = Headers::new();
    headers.push(HeaderName::Identity, bytes::Bytes::copy_from_slice(data));
    for header in IdentityHeader::all_of(&headers).into_iter().flatten() {
        passport(&header.token);
    }
    if let Ok(checked) = url::check(text, &url::DEFAULT_PORTS) {
        assert!(checked.path.starts_with('/'));
        assert!(url::DEFAULT_PORTS.contains(&checked.port));
    }
});
