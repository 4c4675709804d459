//! Keys an app holds, as the tests play the app: a P-256 key that signs DPoP proofs (RFC 9449)
//! and client assertions (`private_key_jwt`, RFC 7523), with its public JWK to register.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// An app's P-256 key.
pub struct AppKey {
    encoding: EncodingKey,
    /// Its public JWK (with `kid`).
    pub jwk: Value,
}

impl AppKey {
    /// A fresh key named `kid`.
    pub fn new(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("reads back");
        let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
        Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            }),
        }
    }

    /// Its RFC 7638 thumbprint (what `cnf.jkt` names).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().expect("x"),
            self.jwk["y"].as_str().expect("y")
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A JWK Set of this key, as TOML for `jwks = …` (the JSON text form).
    pub fn jwks_toml(&self) -> String {
        let set = json!({"keys": [self.jwk]}).to_string();
        format!("jwks = '{set}'")
    }

    /// The same JWK Set written as a TOML inline table (`jwks = { keys = [ { … } ] }`), the
    /// way the README shows it.
    pub fn jwks_inline_toml(&self) -> String {
        let members: Vec<String> = self
            .jwk
            .as_object()
            .expect("a JWK object")
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        format!("jwks = {{ keys = [ {{ {} }} ] }}", members.join(", "))
    }

    /// Signs `claims` with `typ` and, when given, `kid`; `with_jwk` embeds the public key.
    pub fn sign(&self, typ: &str, kid: Option<&str>, with_jwk: bool, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = kid.map(str::to_owned);
        if with_jwk {
            let mut public = self.jwk.clone();
            if let Some(o) = public.as_object_mut() {
                o.remove("kid");
            }
            header.jwk = Some(serde_json::from_value(public).expect("a JWK"));
        }
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signs")
    }

    /// A DPoP proof for `method url` at `iat`, with a fresh `jti`, naming `access_token`
    /// (`ath`) and `nonce` when given.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        iat: i64,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": iat,
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        self.sign("dpop+jwt", None, true, &claims)
    }

    /// A client assertion for `client` with audience `aud`, valid a minute from `now`.
    pub fn assertion(&self, client: &str, aud: &str, now: i64) -> String {
        self.assertion_with(&json!({
            "iss": client, "sub": client, "aud": aud, "iat": now, "exp": now + 60,
            "jti": uuid::Uuid::new_v4().to_string(),
        }))
    }

    /// A client assertion with these claims, signed with this key's `kid`.
    pub fn assertion_with(&self, claims: &Value) -> String {
        let kid = self.jwk["kid"].as_str().map(str::to_owned);
        self.sign("JWT", kid.as_deref(), false, claims)
    }
}

/// The protected header of a JWT.
pub fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

/// The client assertion form fields.
pub fn assertion_form(assertion: &str) -> [(&'static str, String); 2] {
    [
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
        ),
        ("client_assertion", assertion.to_owned()),
    ]
}
