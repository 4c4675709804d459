use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const URL: &str = "https://id.example.com/token";
const NOW: OffsetDateTime = time::macros::datetime!(2030-01-01 12:00 UTC);

/// A P-256 key: its signer and its public JWK.
struct Key {
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

fn key() -> Key {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let (x, y) = point[1..].split_at(32);
    Key {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
    }
}

fn proof_with(key: &Key, typ: &str, jwk: serde_json::Value, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(typ.to_owned());
    header.jwk = Some(serde_json::from_value(jwk).unwrap());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn proof(key: &Key, claims: serde_json::Value) -> String {
    proof_with(key, "dpop+jwt", key.jwk.clone(), claims)
}

fn expected() -> Expected<'static> {
    Expected {
        method: "POST",
        url: URL,
        access_token: None,
        now: NOW,
        max_age: Duration::from_secs(60),
        nonces: None,
    }
}

fn claims() -> serde_json::Value {
    json!({"jti": "j1", "htm": "POST", "htu": URL, "iat": NOW.unix_timestamp()})
}

#[test]
fn a_proof_for_this_request_names_its_key() {
    let k = key();
    let checked = check(&proof(&k, claims()), &expected()).expect("accepted");
    let jwk: Jwk = serde_json::from_value(k.jwk.clone()).unwrap();
    assert_eq!(Some(checked.jkt), thumbprint(&jwk));
    assert_eq!(checked.jti, "j1");
    assert!(checked.usable_until > NOW);
}

#[test]
fn proofs_for_another_request_or_time_are_refused() {
    let k = key();
    let cases = [
        ("another method", json!({"htm": "GET"})),
        (
            "another URL",
            json!({"htu": "https://id.example.com/userinfo"}),
        ),
        (
            "another host",
            json!({"htu": "https://evil.example.com/token"}),
        ),
        ("a stale iat", json!({"iat": NOW.unix_timestamp() - 61})),
        ("a future iat", json!({"iat": NOW.unix_timestamp() + 61})),
        ("no jti", json!({"jti": null})),
        ("no iat", json!({"iat": null})),
    ];
    for (what, change) in cases {
        let mut c = claims();
        for (name, value) in change.as_object().unwrap() {
            c[name] = value.clone();
        }
        let got = check(&proof(&k, c), &expected());
        assert!(
            matches!(got, Err(ProofError::Invalid(_))),
            "{what}: {got:?}"
        );
    }
    // The query and fragment of htu do not count, nor the case of the host.
    let mut c = claims();
    c["htu"] = json!("https://ID.example.com/token?x=1#f");
    assert!(check(&proof(&k, c), &expected()).is_ok());
}

#[test]
fn a_proof_must_be_typed_signed_by_its_own_public_key() {
    let k = key();
    let other = key();
    assert!(matches!(
        check(&proof_with(&k, "JWT", k.jwk.clone(), claims()), &expected()),
        Err(ProofError::Invalid(_))
    ));
    // Signed by one key, naming another.
    assert!(matches!(
        check(
            &proof_with(&k, "dpop+jwt", other.jwk.clone(), claims()),
            &expected()
        ),
        Err(ProofError::Invalid(_))
    ));
    // A private member in the jwk (written by hand: jsonwebtoken's Jwk would drop it).
    let mut private = k.jwk.clone();
    private["d"] = json!("AAAA");
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &k.encoding, Algorithm::ES256)
            .unwrap();
    let with_private = format!("{signing_input}.{signature}");
    assert_eq!(
        check(&with_private, &expected()),
        Err(ProofError::Invalid("the DPoP proof's jwk is a private key"))
    );
    // A MAC is never a proof.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("dpop+jwt".into());
    let mac = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"s")).unwrap();
    assert!(matches!(
        check(&mac, &expected()),
        Err(ProofError::Invalid(_))
    ));
}

#[test]
fn at_a_resource_the_proof_names_the_access_token() {
    let k = key();
    let with_token = Expected {
        access_token: Some("the-token"),
        ..expected()
    };
    let mut c = claims();
    assert!(check(&proof(&k, c.clone()), &with_token).is_err(), "no ath");
    c["ath"] = json!(access_token_hash("another-token"));
    assert!(
        check(&proof(&k, c.clone()), &with_token).is_err(),
        "wrong ath"
    );
    c["ath"] = json!(access_token_hash("the-token"));
    assert!(check(&proof(&k, c), &with_token).is_ok());
}

#[test]
fn nonces_are_asked_for_and_last_two_windows() {
    let k = key();
    let nonces = Nonces::new(&[7; 32]);
    let with_nonces = Expected {
        nonces: Some(&nonces),
        ..expected()
    };
    assert_eq!(
        check(&proof(&k, claims()), &with_nonces),
        Err(ProofError::NonceNeeded)
    );
    let mut c = claims();
    c["nonce"] = json!(nonces.current(NOW - time::Duration::seconds(60)));
    assert!(check(&proof(&k, c.clone()), &with_nonces).is_ok());
    c["nonce"] = json!(nonces.current(NOW - time::Duration::seconds(130)));
    assert_eq!(
        check(&proof(&k, c), &with_nonces),
        Err(ProofError::NonceNeeded)
    );
    assert!(!Nonces::new(&[8; 32]).accepts(&nonces.current(NOW), NOW));
}
