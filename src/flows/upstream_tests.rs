//! Unit tests of `flows/upstream.rs`: the pending login's stored request across releases.

use super::*;
use crate::domain::Scopes;

/// What a release that kept the request's fields as strings stored for an app's sign-in.
const STORED_BEFORE_TYPES: &str = r#"{"client_id":"wiki","redirect_uri":"https://wiki.example.com/cb","scope":"openid profile offline_access","state":"st","nonce":"n-0S6_WzA2Mj","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","prompt":{"none":false,"login":true,"consent":false},"max_age":300,"hint_sub":"318172463195504640"}"#;

#[test]
fn a_login_pending_across_the_upgrade_to_typed_requests_still_finishes() {
    let read: SignInFor = serde_json::from_str(STORED_BEFORE_TYPES).expect("still reads");

    let SignInFor::App(request) = &read else {
        panic!("an app's sign-in: {read:?}");
    };
    assert_eq!(request.client_id.as_str(), "wiki");
    assert_eq!(
        request.scope,
        Scopes::parse_request("openid profile offline_access")
    );
    assert_eq!(
        request.code_challenge.as_ref().map(PkceChallenge::as_str),
        Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    );
    assert_eq!(
        serde_json::to_string(&read).expect("writes"),
        STORED_BEFORE_TYPES,
        "and is written exactly as before"
    );
    let account: SignInFor =
        serde_json::from_str(r#"{"account":true,"another":false}"#).expect("reads");
    assert_eq!(account, SignInFor::account(false));
}

#[test]
fn a_stored_request_with_values_we_never_write_is_refused_not_narrowed() {
    for (field, bad) in [
        ("\"openid profile offline_access\"", "\"openid admin\""),
        ("\"wiki\"", "\"not a client\""),
        (
            "\"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\"",
            "\"plain-challenge\"",
        ),
    ] {
        let tampered = STORED_BEFORE_TYPES.replace(field, bad);

        let read = serde_json::from_str::<SignInFor>(&tampered);

        assert!(read.is_err(), "{bad} must not read: {read:?}");
    }
}
