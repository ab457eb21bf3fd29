//! Per-trunk header policies: allow-lists, deny-lists, compact forms, prefixes, defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sbc_core::routing::{HeaderPolicy, HeaderPolicyError, HeaderPolicyMode};
use sbc_core::sip::HeaderName;

fn name(text: &str) -> HeaderName {
    HeaderName::from_bytes(text.as_bytes())
}

#[test]
fn an_allow_list_passes_only_its_names_in_any_spelling() {
    let policy =
        HeaderPolicy::allow(["Subject", "allow-events", "X-Account-*", "P-Early-Media"]).unwrap();
    assert_eq!(policy.mode(), HeaderPolicyMode::Allow);
    for passing in [
        "Subject",
        "SUBJECT",
        "s",
        "S",
        "Allow-Events",
        "u",
        "x-account-id",
        "X-ACCOUNT-CODE",
        "p-early-media",
    ] {
        assert!(policy.passes(&name(passing)), "{passing}");
    }
    for blocked in [
        "Supported",
        "k",
        "X-Other",
        "X-Account",
        "P-Asserted-Identity",
        "Call-Info",
    ] {
        assert!(!policy.passes(&name(blocked)), "{blocked}");
    }
}

#[test]
fn a_compact_form_in_the_list_stands_for_the_long_form() {
    let policy = HeaderPolicy::deny(["i", "k", "Refer-To"]).unwrap();
    for blocked in ["Call-ID", "call-id", "i", "Supported", "k", "r", "REFER-TO"] {
        assert!(!policy.passes(&name(blocked)), "{blocked}");
    }
    for passing in ["Subject", "s", "Require", "X-Whatever"] {
        assert!(policy.passes(&name(passing)), "{passing}");
    }
}

#[test]
fn the_untrusted_default_strips_asserted_identity_charging_and_internal_headers() {
    let policy = HeaderPolicy::untrusted_default();
    assert_eq!(policy.mode(), HeaderPolicyMode::Deny);
    for blocked in [
        "P-Asserted-Identity",
        "p-asserted-identity",
        "P-Preferred-Identity",
        "Remote-Party-ID",
        "remote-party-id",
        "P-Charging-Vector",
        "P-Charging-Function-Addresses",
        "X-Internal-Route",
        "x-anything",
    ] {
        assert!(!policy.passes(&name(blocked)), "{blocked}");
    }
    for passing in [
        "Subject",
        "Privacy",
        "Identity",
        "y",
        "User-Agent",
        "Reason",
        "Diversion",
        "Xylophone",
    ] {
        assert!(policy.passes(&name(passing)), "{passing}");
    }
    assert_eq!(HeaderPolicy::default_for(false), policy);
}

#[test]
fn trusted_trunks_pass_everything_by_default() {
    let policy = HeaderPolicy::default_for(true);
    assert_eq!(policy, HeaderPolicy::pass_all());
    assert_eq!(policy, HeaderPolicy::default());
    for passing in ["P-Asserted-Identity", "X-Internal", "i", "Remote-Party-ID"] {
        assert!(policy.passes(&name(passing)), "{passing}");
    }
}

#[test]
fn an_empty_allow_list_passes_nothing() {
    let policy = HeaderPolicy::allow(Vec::<String>::new()).unwrap();
    assert!(!policy.passes(&name("Subject")));
}

#[test]
fn entries_that_are_not_header_names_are_refused() {
    assert_eq!(HeaderPolicy::deny([""]), Err(HeaderPolicyError::EmptyName));
    assert_eq!(
        HeaderPolicy::deny(["  "]),
        Err(HeaderPolicyError::EmptyName)
    );
    for bad in ["*", "X Foo", "X-Foo:", "Bad\r\nHeader", "Ünicode"] {
        let error = HeaderPolicy::allow([bad]).unwrap_err();
        assert_eq!(error.name(), "invalid_name", "{bad}");
    }
    // Surrounding whitespace from a config file is forgiven.
    let policy = HeaderPolicy::deny([" Subject "]).unwrap();
    assert!(!policy.passes(&name("Subject")));
}
