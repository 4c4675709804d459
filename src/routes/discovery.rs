//! `/.well-known/openid-configuration` and `/jwks.json`, both served from bytes built once.

use crate::config::ValidConfig;
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use openidconnect::core::{
    CoreClaimName, CoreClientAuthMethod, CoreGrantType, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, IssuerUrl, JsonWebKeySetUrl, ProviderMetadata,
    ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};

/// Metadata fields beyond OIDC Discovery §3 that we implement (RFC 8414, RFC 9207).
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
    /// RP-Initiated Logout 1.0 §2.1.
    end_session_endpoint: String,
    /// Back-Channel Logout 1.0 §2.1.
    backchannel_logout_supported: bool,
    /// Back-Channel Logout 1.0 §2.1: logout tokens carry `sid`.
    backchannel_logout_session_supported: bool,
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

/// Builds the discovery document once; it changes only with configuration.
pub fn build_metadata(config: &ValidConfig) -> Result<bytes::Bytes, anyhow::Error> {
    let issuer = &config.issuer;
    // The `connections` scope and claim exist only where some client may receive them.
    let connections = config.clients.iter().any(|c| c.connections);
    let metadata = Metadata::new(
        IssuerUrl::new(issuer.as_str().to_owned())?,
        AuthUrl::new(issuer.endpoint("/authorize"))?,
        JsonWebKeySetUrl::new(issuer.endpoint("/jwks.json"))?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![
            CoreSubjectIdentifierType::Public,
            CoreSubjectIdentifierType::Pairwise,
        ],
        vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
        ExtraMetadata {
            code_challenge_methods_supported: vec!["S256".into()],
            authorization_response_iss_parameter_supported: true,
            revocation_endpoint: issuer.endpoint("/revoke"),
            revocation_endpoint_auth_methods_supported: client_auth_methods(),
            introspection_endpoint: issuer.endpoint("/introspect"),
            introspection_endpoint_auth_methods_supported: client_auth_methods(),
            end_session_endpoint: issuer.endpoint("/logout"),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
        },
    )
    .set_token_endpoint(Some(TokenUrl::new(issuer.endpoint("/token"))?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(issuer.endpoint("/userinfo"))?))
    .set_response_modes_supported(Some(vec![CoreResponseMode::Query]))
    .set_grant_types_supported(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .set_scopes_supported(Some(
        ["openid", "profile", "email", "groups", "offline_access"]
            .into_iter()
            .chain(connections.then_some("connections"))
            .map(|s| Scope::new(s.into()))
            .collect(),
    ))
    .set_token_endpoint_auth_methods_supported(Some(vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
        CoreClientAuthMethod::None,
    ]))
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
    // OIDC Discovery §3: request_uri_parameter_supported defaults to true, so say no explicitly.
    .set_claims_parameter_supported(Some(false))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false));
    Ok(serde_json::to_vec(&metadata)?.into())
}

/// Client authentication methods of the token, revocation and introspection endpoints.
fn client_auth_methods() -> Vec<String> {
    ["client_secret_basic", "client_secret_post", "none"]
        .map(String::from)
        .to_vec()
}

/// Mounts discovery and JWKS.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(openid_configuration).service(jwks);
}

#[get("/.well-known/openid-configuration")]
async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(state.discovery.clone())
}

#[get("/jwks.json")]
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    // Short enough that a key pre-published at rotation reaches every RP cache before it signs.
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(state.keys.jwks_json())
}
