//! Round-trip properties of the STIR/SHAKEN wire forms: any PASSporT encodes to a token
//! that parses back to it (canonically, so encoding twice gives the same bytes); any
//! Identity header prints to a value that parses back to it; any TNAuthList encodes to
//! DER that decodes to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sbc_core::identity::header::IdentityHeader;
use sbc_core::identity::passport::{
    Attestation, Claims, Destinations, Party, Passport, PassportHeader, SignedPassport,
};
use sbc_core::identity::tnauth::{TnAuthList, TnEntry};

fn tn() -> impl Strategy<Value = String> {
    "[0-9]{1,15}"
}

fn party() -> impl Strategy<Value = Party> {
    prop_oneof![
        tn().prop_map(Party::Tn),
        "sip:[a-z]{1,8}@[a-z]{1,8}\\.example".prop_map(Party::Uri),
    ]
}

fn passport() -> impl Strategy<Value = Passport> {
    (
        party(),
        prop::collection::vec(tn(), 0..3),
        prop::collection::vec("sip:[a-z\"\\\\/é]{1,8}@b", 0..2),
        any::<u32>(),
        prop::option::of(prop_oneof![
            Just(Attestation::A),
            Just(Attestation::B),
            Just(Attestation::C)
        ]),
        prop::option::of("[0-9a-f-]{1,36}"),
        prop::option::of(party()),
        prop::option::of(prop_oneof![Just("shaken"), Just("div")]),
        "https://[a-z]{1,10}\\.example(:[0-9]{2,4})?/[a-z]{0,8}\\.pem",
    )
        .prop_filter("dest names someone", |(_, tns, uris, ..)| {
            !(tns.is_empty() && uris.is_empty())
        })
        .prop_map(
            |(orig, tn, uri, iat, attest, origid, div, ppt, x5u)| Passport {
                header: PassportHeader::with_ppt(x5u, ppt),
                claims: Claims {
                    orig,
                    dest: Destinations { tn, uri },
                    iat: u64::from(iat),
                    attest,
                    origid,
                    div,
                },
            },
        )
}

proptest! {
    #[test]
    fn passports_round_trip(passport in passport(), signature in prop::collection::vec(any::<u8>(), 0..80)) {
        let signing_input = passport.signing_input();
        let signed = SignedPassport { passport: passport.clone(), signing_input: signing_input.clone(), signature };
        let parsed = SignedPassport::parse(&signed.token()).unwrap();
        prop_assert_eq!(&parsed, &signed);
        prop_assert_eq!(parsed.passport.signing_input(), signing_input);
        let compact = SignedPassport::from_compact(&signed.compact_token(), passport).unwrap();
        prop_assert_eq!(compact, signed);
    }

    #[test]
    fn identity_headers_round_trip(
        token in "[A-Za-z0-9_-]{1,40}(\\.[A-Za-z0-9_-]{0,40}){0,2}",
        info in prop::option::of("https://[a-z]{1,8}\\.example/[a-z;,]{0,8}"),
        alg in prop::option::of("[A-Z0-9]{2,6}"),
        ppt in prop::option::of("[a-z]{1,8}"),
        extensions in prop::collection::vec(("x[a-z]{0,5}", prop::option::of("[a-z0-9]{1,5}")), 0..3),
    ) {
        let header = IdentityHeader { token, info, alg, ppt, extensions };
        let parsed = IdentityHeader::parse(&header.to_string()).unwrap();
        prop_assert_eq!(parsed, header);
    }

    #[test]
    fn tn_auth_lists_round_trip(entries in prop::collection::vec(prop_oneof![
        "[A-Z0-9]{1,10}".prop_map(TnEntry::Spc),
        tn().prop_map(TnEntry::One),
        (tn(), 2u64..1_000_000).prop_map(|(start, count)| TnEntry::Range { start, count }),
    ], 1..20)) {
        let list = TnAuthList(entries);
        prop_assert_eq!(TnAuthList::from_der(&list.to_der()).unwrap(), list);
    }
}
