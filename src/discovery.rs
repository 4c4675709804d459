//! The OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414), built from the validated
//! configuration whenever it is put in force: it names exactly what this configuration enables
//! (a grant only some client may use is listed only while one may).

use crate::config::{AuthMethod, ValidConfig};
use openidconnect::core::{
    CoreClaimName, CoreClientAuthMethod, CoreGrantType, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, IssuerUrl, JsonWebKeySetUrl, ProviderMetadata,
    ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};

/// Metadata fields beyond OIDC Discovery §3 that we implement (RFC 8414, RFC 9207, RFC 8628,
/// RFC 9126, RFC 9449).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExtraMetadata {
    /// RFC 8414 §2 / RFC 7636: S256 only.
    code_challenge_methods_supported: Vec<String>,
    /// RFC 9207 §3: we send `iss` in authorization responses.
    authorization_response_iss_parameter_supported: bool,
    /// RFC 8414 §2 / RFC 7009.
    revocation_endpoint: String,
    /// RFC 8414 §2.
    revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 §2 / RFC 7662.
    introspection_endpoint: String,
    /// RFC 8414 §2.
    introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 §2: the algorithms of `private_key_jwt` assertions, when a client uses it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    revocation_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 8414 §2: the same for introspection.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    introspection_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// RP-Initiated Logout 1.0 §2.1.
    end_session_endpoint: String,
    /// Back-Channel Logout 1.0 §2.1.
    backchannel_logout_supported: bool,
    /// Back-Channel Logout 1.0 §2.1: logout tokens carry `sid`.
    backchannel_logout_session_supported: bool,
    /// RFC 8628 §4: while some client may use the device grant.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    device_authorization_endpoint: Option<String>,
    /// RFC 9126 §5.
    pushed_authorization_request_endpoint: String,
    /// RFC 9126 §5: not for every client (each may be held to it).
    require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.1.
    dpop_signing_alg_values_supported: Vec<String>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    openidconnect::core::CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    openidconnect::core::CoreClaimType,
    CoreGrantType,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

// Keeps the alias honest: our metadata is the core metadata plus the extra fields.
const _: fn(CoreProviderMetadata) = |_| {};

/// The discovery document of `config`, serialized (it changes only with configuration).
pub fn document(config: &ValidConfig) -> bytes::Bytes {
    match metadata(config).and_then(|m| Ok(serde_json::to_vec(&m)?)) {
        Ok(json) => json.into(),
        // Every URL in it is the validated issuer plus a fixed path, so this cannot happen.
        Err(e) => {
            tracing::error!(error = %e, "cannot build the discovery document");
            bytes::Bytes::from_static(b"{}")
        }
    }
}

fn metadata(config: &ValidConfig) -> Result<Metadata, anyhow::Error> {
    let issuer = &config.issuer;
    let clients = &config.clients;
    // The `connections` scope and claim exist only where some client may receive them.
    let connections = clients.iter().any(|c| c.connections);
    let device = clients.iter().any(|c| c.device_flow);
    let service = clients.iter().any(|c| c.client_credentials);
    let key_jwt = clients
        .iter()
        .any(|c| c.auth_method == AuthMethod::PrivateKeyJwt);
    let es256_id_tokens = clients
        .iter()
        .any(|c| c.id_token_alg == crate::jws::Alg::ES256);
    let auth_methods = client_auth_methods(key_jwt);
    let foreign_algs: Vec<String> = crate::jws::FOREIGN_ALGORITHM_NAMES
        .split(' ')
        .map(str::to_owned)
        .collect();
    let assertion_algs = key_jwt.then(|| foreign_algs.clone());
    let mut id_token_algs = vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256];
    if es256_id_tokens {
        id_token_algs.push(CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    }
    let mut grants = vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ];
    if device {
        grants.push(CoreGrantType::DeviceCode);
    }
    if service {
        grants.push(CoreGrantType::ClientCredentials);
    }
    let metadata = Metadata::new(
        IssuerUrl::new(issuer.as_str().to_owned())?,
        AuthUrl::new(issuer.endpoint("/authorize"))?,
        JsonWebKeySetUrl::new(issuer.endpoint("/jwks.json"))?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![
            CoreSubjectIdentifierType::Public,
            CoreSubjectIdentifierType::Pairwise,
        ],
        id_token_algs,
        ExtraMetadata {
            code_challenge_methods_supported: vec!["S256".into()],
            authorization_response_iss_parameter_supported: true,
            revocation_endpoint: issuer.endpoint("/revoke"),
            revocation_endpoint_auth_methods_supported: auth_methods.clone(),
            introspection_endpoint: issuer.endpoint("/introspect"),
            introspection_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
            introspection_endpoint_auth_signing_alg_values_supported: assertion_algs,
            end_session_endpoint: issuer.endpoint("/logout"),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            device_authorization_endpoint: device.then(|| issuer.endpoint("/device_authorization")),
            pushed_authorization_request_endpoint: issuer.endpoint("/par"),
            require_pushed_authorization_requests: false,
            dpop_signing_alg_values_supported: foreign_algs.clone(),
        },
    )
    .set_token_endpoint(Some(TokenUrl::new(issuer.endpoint("/token"))?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(issuer.endpoint("/userinfo"))?))
    .set_response_modes_supported(Some(vec![
        CoreResponseMode::Query,
        CoreResponseMode::FormPost,
    ]))
    .set_grant_types_supported(Some(grants))
    .set_scopes_supported(Some(
        ["openid", "profile", "email", "groups", "offline_access"]
            .into_iter()
            .chain(connections.then_some("connections"))
            .map(|s| Scope::new(s.into()))
            .collect(),
    ))
    .set_token_endpoint_auth_methods_supported(Some(
        auth_methods
            .iter()
            .map(|m| serde_json::from_value(serde_json::Value::String(m.clone())))
            .collect::<Result<_, _>>()?,
    ))
    .set_token_endpoint_auth_signing_alg_values_supported(key_jwt.then(|| {
        foreign_algs
            .iter()
            .filter_map(|a| serde_json::from_value(serde_json::Value::String(a.clone())).ok())
            .collect()
    }))
    .set_claims_supported(Some(
        [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "sid",
            "preferred_username",
            "name",
            "picture",
            "locale",
            "email",
            "email_verified",
            "groups",
            "updated_at",
        ]
        .into_iter()
        .chain(connections.then_some("connections"))
        .chain(crate::claims::community_claim_names(config))
        .map(|c| CoreClaimName::new(c.into()))
        .collect(),
    ))
    // OIDC Discovery §3: request_uri_parameter_supported defaults to true, so say no
    // explicitly: request objects by reference are not supported (a PAR `request_uri` is RFC
    // 9126's own mechanism, announced by pushed_authorization_request_endpoint).
    .set_claims_parameter_supported(Some(false))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false));
    Ok(metadata)
}

/// Client authentication methods of the token, revocation, introspection and PAR endpoints.
fn client_auth_methods(private_key_jwt: bool) -> Vec<String> {
    ["client_secret_basic", "client_secret_post"]
        .into_iter()
        .chain(private_key_jwt.then_some("private_key_jwt"))
        .chain(["none"])
        .map(String::from)
        .collect()
}
