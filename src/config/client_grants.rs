//! Validation of a client's grants beyond the code flow and of how it authenticates: the
//! client-credentials scopes, `token_endpoint_auth_method`, its keys for `private_key_jwt`
//! (`jwks` or `jwks_uri`) and the ID token algorithm.

use super::ClientSettings;
use super::types::{AuthMethod, ClientKeys, ClientSecret};
use super::validate::Checker;
use crate::domain::SUPPORTED_SCOPES;
use crate::jws::Alg;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use std::sync::Arc;
use url::Url;

/// The checked options, for `ValidClient`.
pub(super) struct ClientGrants {
    pub(super) allowed_scopes: Vec<String>,
    pub(super) auth_method: AuthMethod,
    pub(super) keys: Option<ClientKeys>,
    pub(super) id_token_alg: Alg,
}

/// Checks client `i`'s issue-25 options against its credentials, recording problems.
pub(super) fn check(
    c: &mut Checker,
    i: usize,
    s: &ClientSettings,
    secret: &ClientSecret,
) -> Option<ClientGrants> {
    let key = |field: &str| format!("clients[{i}].{field}");
    let public = matches!(secret, ClientSecret::Public);
    let keys = client_keys(c, i, s);
    if public && (s.jwks.is_some() || s.jwks_uri.is_some()) {
        c.problem(
            key("jwks"),
            "a public client does not authenticate, so it has no keys (remove jwks/jwks_uri or public)",
        );
    }
    let auth_method = auth_method(c, i, s, secret)?;
    if s.client_credentials && public {
        c.problem(
            key("client_credentials"),
            "service tokens are for confidential clients: a public client cannot keep a credential",
        );
    }
    if !s.client_credentials && !s.allowed_scopes.is_empty() {
        c.problem(
            key("allowed_scopes"),
            "only service tokens carry allowed_scopes: set client_credentials = true or remove it",
        );
    }
    let allowed_scopes = s
        .allowed_scopes
        .iter()
        .enumerate()
        .filter_map(|(n, scope)| {
            c.check(
                format!("{}[{n}]", key("allowed_scopes")),
                service_scope(scope),
            )
        })
        .collect();
    let id_token_alg = match s.id_token_signed_response_alg.as_str() {
        "" | "RS256" => Alg::RS256,
        "ES256" => Alg::ES256,
        other => {
            c.problem(
                key("id_token_signed_response_alg"),
                format!("{other:?} is not \"RS256\" or \"ES256\""),
            );
            Alg::RS256
        }
    };
    Some(ClientGrants {
        allowed_scopes,
        auth_method,
        keys,
        id_token_alg,
    })
}

/// `token_endpoint_auth_method`, or the method the credentials imply.
fn auth_method(
    c: &mut Checker,
    i: usize,
    s: &ClientSettings,
    secret: &ClientSecret,
) -> Option<AuthMethod> {
    let key = format!("clients[{i}].token_endpoint_auth_method");
    let has_secret = matches!(secret, ClientSecret::Hash(_) | ClientSecret::Plain(_));
    let has_keys = s.jwks.is_some() || s.jwks_uri.is_some();
    let implied = match secret {
        ClientSecret::Public => AuthMethod::None,
        ClientSecret::Hash(_) | ClientSecret::Plain(_) => AuthMethod::ClientSecret,
        ClientSecret::KeysOnly => AuthMethod::PrivateKeyJwt,
    };
    let (method, fits) = match s.token_endpoint_auth_method.as_str() {
        "" => return Some(implied),
        "none" => (AuthMethod::None, matches!(secret, ClientSecret::Public)),
        "client_secret_basic" => (AuthMethod::ClientSecretBasic, has_secret),
        "client_secret_post" => (AuthMethod::ClientSecretPost, has_secret),
        "private_key_jwt" => (AuthMethod::PrivateKeyJwt, has_keys),
        other => {
            c.problem(
                key,
                format!(
                    "{other:?} is not client_secret_basic, client_secret_post, private_key_jwt or none"
                ),
            );
            return None;
        }
    };
    if !fits {
        c.problem(
            key,
            match method {
                AuthMethod::None => "\"none\" is for public clients (public = true)",
                AuthMethod::PrivateKeyJwt => {
                    "private_key_jwt needs the client's keys: set jwks or jwks_uri"
                }
                _ => "a client secret method needs secret_hash (or a dev secret)",
            },
        );
        return None;
    }
    Some(method)
}

/// `jwks` (a JWK Set, inline or as JSON text) or `jwks_uri`, not both.
fn client_keys(c: &mut Checker, i: usize, s: &ClientSettings) -> Option<ClientKeys> {
    let key = |field: &str| format!("clients[{i}].{field}");
    match (&s.jwks, &s.jwks_uri) {
        (Some(_), Some(_)) => {
            c.problem(key("jwks_uri"), "set jwks or jwks_uri, not both");
            None
        }
        (Some(raw), None) => c
            .check(key("jwks"), parse_jwks(raw))
            .map(|set| ClientKeys::Inline(Arc::new(set))),
        (None, Some(raw)) => c
            .check(key("jwks_uri"), parse_jwks_uri(raw))
            .map(ClientKeys::Uri),
        (None, None) => None,
    }
}

/// A JWK Set of public signing keys guildgate can verify with.
pub fn parse_jwks(raw: &serde_json::Value) -> Result<JwkSet, String> {
    let value = match raw {
        serde_json::Value::String(text) => serde_json::from_str(text)
            .map_err(|e| format!("is not the JSON text of a JWK Set ({e})"))?,
        other => other.clone(),
    };
    // Read the members a parsed `Jwk` drops (it keeps the public parameters only) first.
    let private = value["keys"].as_array().and_then(|keys| {
        keys.iter()
            .enumerate()
            .find_map(|(n, key)| private_member(key).map(|member| (n, member)))
    });
    let set: JwkSet = serde_json::from_value(value)
        .map_err(|e| format!("is not a JWK Set {{\"keys\": [...]}} ({e})"))?;
    if set.keys.is_empty() {
        return Err("holds no keys".to_owned());
    }
    for (n, jwk) in set.keys.iter().enumerate() {
        usable_public_key(jwk).map_err(|why| format!("key {n}: {why}"))?;
    }
    if let Some((n, member)) = private {
        return Err(format!(
            "key {n}: is a private key (it has {member:?}): register the public key only"
        ));
    }
    Ok(set)
}

/// JWK members only a private key has (RFC 7518 §6.2.2, §6.3.2; OKP: RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// The first private member of a JWK, if it has one.
pub fn private_member(key: &serde_json::Value) -> Option<&'static str> {
    PRIVATE_MEMBERS
        .into_iter()
        .find(|member| key.get(member).is_some())
}

/// Refuses symmetric and unusable keys (private members are refused by [`parse_jwks`], which
/// still sees them).
pub fn usable_public_key(jwk: &Jwk) -> Result<(), String> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    match &jwk.algorithm {
        P::OctetKey(_) => return Err("a symmetric (oct) key cannot authenticate a client".into()),
        P::Other(_) => return Err("is not an RSA, EC or OKP key".into()),
        P::EllipticCurve(_) | P::RSA(_) | P::OctetKeyPair(_) => {}
        _ => return Err("is not an RSA, EC or OKP key".into()),
    }
    jsonwebtoken::DecodingKey::from_jwk(jwk)
        .map(|_| ())
        .map_err(|e| format!("is not a usable public key ({e})"))
}

/// An absolute https URL (http only for a loopback host, for development and tests).
fn parse_jwks_uri(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if crate::domain::is_loopback(&url) => Ok(url),
        _ => Err(format!(
            "{raw:?} must be an https URL (http only on localhost)"
        )),
    }
}

/// An RFC 6749 §3.3 scope-token that is not one of the person scopes.
fn service_scope(scope: &str) -> Result<String, String> {
    let token_char = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    if scope.is_empty() || !scope.bytes().all(token_char) {
        return Err(format!(
            "{scope:?} is not a scope: printable ASCII without spaces, quotes or backslashes"
        ));
    }
    if SUPPORTED_SCOPES.contains(&scope) {
        return Err(format!(
            "{scope:?} is about a person; a service token has no person (use scopes of your own, such as \"deploy\")"
        ));
    }
    Ok(scope.to_owned())
}
