use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const NOW: OffsetDateTime = time::macros::datetime!(2030-01-01 12:00 UTC);
const ISSUER: &str = "https://id.example.com";
const TOKEN: &str = "https://id.example.com/token";
const REVOKE: &str = "https://id.example.com/revoke";

struct Key {
    encoding: EncodingKey,
    jwk: Jwk,
}

fn key(kid: &str) -> Key {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
    Key {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }))
        .unwrap(),
    }
}

fn sign(key: &Key, kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn claims() -> serde_json::Value {
    json!({
        "iss": "ci", "sub": "ci", "aud": TOKEN, "jti": "a1",
        "iat": NOW.unix_timestamp(), "exp": NOW.unix_timestamp() + 60,
    })
}

fn at(endpoint: &'static str) -> Audience<'static> {
    Audience {
        issuer: ISSUER,
        endpoint,
        token_endpoint: TOKEN,
    }
}

#[test]
fn an_assertion_signed_by_a_client_key_names_its_one_use() {
    let k = key("k1");
    let used = verify(
        &sign(&k, Some("k1"), claims()),
        "ci",
        std::slice::from_ref(&k.jwk),
        at(TOKEN),
        NOW,
    )
    .expect("accepted");
    assert_eq!(used.jti, "a1");
    assert_eq!(used.expires_at, NOW + time::Duration::seconds(60));
    // Without a kid, every key of the client is tried.
    assert!(
        verify(
            &sign(&k, None, claims()),
            "ci",
            std::slice::from_ref(&k.jwk),
            at(TOKEN),
            NOW
        )
        .is_ok()
    );
}

#[test]
fn the_audience_may_be_the_issuer_this_endpoint_or_the_token_endpoint() {
    let k = key("k1");
    for aud in [
        json!(ISSUER),
        json!(REVOKE),
        json!(TOKEN),
        json!([ISSUER, "x"]),
    ] {
        let mut c = claims();
        c["aud"] = aud.clone();
        let got = verify(
            &sign(&k, Some("k1"), c),
            "ci",
            std::slice::from_ref(&k.jwk),
            at(REVOKE),
            NOW,
        );
        assert!(got.is_ok(), "{aud}: {got:?}");
    }
    let mut c = claims();
    c["aud"] = json!("https://other.example.com/token");
    assert!(
        verify(
            &sign(&k, Some("k1"), c),
            "ci",
            std::slice::from_ref(&k.jwk),
            at(REVOKE),
            NOW
        )
        .is_err()
    );
}

#[test]
fn assertions_that_do_not_fit_are_refused() {
    let k = key("k1");
    let cases = [
        ("another issuer", json!({"iss": "other"})),
        ("another subject", json!({"sub": "other"})),
        ("expired", json!({"exp": NOW.unix_timestamp()})),
        (
            "valid for a day",
            json!({"exp": NOW.unix_timestamp() + 86_400}),
        ),
        (
            "issued in the future",
            json!({"iat": NOW.unix_timestamp() + 600}),
        ),
        ("no jti", json!({"jti": null})),
        ("no exp", json!({"exp": null})),
    ];
    for (what, change) in cases {
        let mut c = claims();
        for (name, value) in change.as_object().unwrap() {
            c[name] = value.clone();
        }
        let got = verify(
            &sign(&k, Some("k1"), c),
            "ci",
            std::slice::from_ref(&k.jwk),
            at(TOKEN),
            NOW,
        );
        assert!(
            matches!(got, Err(AssertionError::Invalid(_))),
            "{what}: {got:?}"
        );
    }
}

#[test]
fn only_the_clients_own_keys_verify() {
    let ours = key("k1");
    let stranger = key("k1");
    // Same kid, another key: refused as a bad signature, not as an unknown key.
    let forged = sign(&stranger, Some("k1"), claims());
    assert!(matches!(
        verify(
            &forged,
            "ci",
            std::slice::from_ref(&ours.jwk),
            at(TOKEN),
            NOW
        ),
        Err(AssertionError::Invalid(_))
    ));
    // A kid the set lacks asks for the keys to be fetched again.
    let unknown = sign(&ours, Some("k2"), claims());
    assert_eq!(
        verify(
            &unknown,
            "ci",
            std::slice::from_ref(&ours.jwk),
            at(TOKEN),
            NOW
        ),
        Err(AssertionError::UnknownKey)
    );
    // A MAC with a shared secret is never accepted.
    let mac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert!(verify(&mac, "ci", std::slice::from_ref(&ours.jwk), at(TOKEN), NOW).is_err());
    assert_eq!(claimed_client(&forged).as_deref(), Some("ci"));
}
