//! What a call's identity changes on the INVITE the B2BUA sends: the Identity headers
//! (the caller's removed or kept, ours added) and the `verstat` parameter (3GPP TS 24.229
//! §7.2A.20) on the P-Asserted-Identity URIs, or on From when there is none.

use bytes::Bytes;

use crate::sip::{HeaderName, Headers, NameAddr, Uri};

use super::numbers::split_list;
use super::service::{CallIdentity, VerstatEdit};

/// The URI parameter carrying the verification status.
pub const VERSTAT: &str = "verstat";

/// Applies `identity` to an INVITE being built: `headers` are its headers (already
/// holding what passed from the caller's), `from` its From.
pub fn apply(identity: &CallIdentity, headers: &mut Headers, from: &mut NameAddr) {
    headers.remove_all(&HeaderName::Identity);
    for value in &identity.identity_headers {
        headers.push(HeaderName::Identity, value.clone());
    }
    let has_pai = headers.contains(&HeaderName::PAssertedIdentity);
    match identity.verstat {
        VerstatEdit::Keep => {}
        VerstatEdit::Strip => {
            edit_pai(headers, None);
            set_verstat(from, None);
        }
        VerstatEdit::Set(verstat) => {
            let value = Bytes::from_static(verstat.as_str().as_bytes());
            if has_pai {
                edit_pai(headers, Some(&value));
                set_verstat(from, None);
            } else {
                set_verstat(from, Some(&value));
            }
        }
    }
}

/// Sets (or with `None` removes) verstat on a name-addr's URI.
pub fn set_verstat(name_addr: &mut NameAddr, value: Option<&Bytes>) {
    let params = match &mut name_addr.uri {
        Uri::Sip(sip) => &mut sip.params,
        Uri::Tel(tel) => &mut tel.params,
        Uri::Other { .. } => return,
    };
    match value {
        Some(value) => params.set(VERSTAT, Some(value.clone())),
        None => params.remove(VERSTAT),
    }
}

/// Rewrites every P-Asserted-Identity value with verstat set or removed. A value that
/// does not parse is dropped (it cannot be checked for a forged verstat).
fn edit_pai(headers: &mut Headers, value: Option<&Bytes>) {
    let lines: Vec<Bytes> = headers
        .get_all(&HeaderName::PAssertedIdentity)
        .cloned()
        .collect();
    if lines.is_empty() {
        return;
    }
    headers.remove_all(&HeaderName::PAssertedIdentity);
    for line in lines {
        for item in split_list(&line) {
            let Ok(mut name_addr) = NameAddr::decode(&item) else {
                continue;
            };
            set_verstat(&mut name_addr, value);
            name_addr.angle_brackets = true;
            headers.push(HeaderName::PAssertedIdentity, name_addr.to_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::identity::verdict::Verstat;

    fn identity(verstat: VerstatEdit) -> CallIdentity {
        CallIdentity {
            verdict: None,
            signed: None,
            identity_headers: vec![Bytes::from_static(b"ours;info=<https://x/y>")],
            verstat,
            caller_reason: None,
        }
    }

    #[test]
    fn verstat_goes_on_pai_or_from_and_forged_ones_go() {
        let mut headers = Headers::new();
        headers.push(HeaderName::Identity, "theirs");
        headers.push(
            HeaderName::PAssertedIdentity,
            "<sip:+1215@ex.com;verstat=TN-Validation-Passed>, <tel:+1215>",
        );
        let mut from =
            NameAddr::parse(b"<sip:+1215@sbc;verstat=TN-Validation-Passed>;tag=1").unwrap();
        apply(
            &identity(VerstatEdit::Set(Verstat::Failed)),
            &mut headers,
            &mut from,
        );
        let pai: Vec<_> = headers.get_all(&HeaderName::PAssertedIdentity).collect();
        assert_eq!(
            pai[0].as_ref(),
            b"<sip:+1215@ex.com;verstat=TN-Validation-Failed>"
        );
        assert_eq!(pai[1].as_ref(), b"<tel:+1215;verstat=TN-Validation-Failed>");
        assert_eq!(from.to_string(), "<sip:+1215@sbc>;tag=1");
        let identities: Vec<_> = headers.get_all(&HeaderName::Identity).collect();
        assert_eq!(
            identities,
            vec![&Bytes::from_static(b"ours;info=<https://x/y>")]
        );

        let mut headers = Headers::new();
        let mut from = NameAddr::parse(b"<sip:+1215@sbc>;tag=1").unwrap();
        apply(
            &identity(VerstatEdit::Set(Verstat::Passed)),
            &mut headers,
            &mut from,
        );
        assert_eq!(
            from.to_string(),
            "<sip:+1215@sbc;verstat=TN-Validation-Passed>;tag=1"
        );

        let mut headers = Headers::new();
        headers.push(
            HeaderName::PAssertedIdentity,
            "<sip:a@b;verstat=TN-Validation-Passed>",
        );
        let mut from = NameAddr::parse(b"<sip:a@b;verstat=TN-Validation-Passed>;tag=1").unwrap();
        apply(&identity(VerstatEdit::Strip), &mut headers, &mut from);
        assert_eq!(
            headers
                .get(&HeaderName::PAssertedIdentity)
                .unwrap()
                .as_ref(),
            b"<sip:a@b>"
        );
        assert_eq!(from.to_string(), "<sip:a@b>;tag=1");
    }
}
