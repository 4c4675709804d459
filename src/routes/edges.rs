//! The HTTP edge, before any handler runs: the table of mounted paths and their methods (405 with
//! `Allow`, `HEAD` answered as `GET`), parameters that must percent-decode to UTF-8, and size
//! limits on query strings, form bodies and single values. Refusals are an OAuth2 JSON error on
//! the endpoints apps call and a readable page on the ones people see.

use super::form;
use crate::error::{OAuthError, OAuthErrorCode, PageError};
use crate::limits::RequestKind;
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError};

/// Who reads an endpoint's answers, which decides the shape of an edge refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// An app (fetch, back end, RP library): OAuth2 JSON errors (RFC 6749 §5.2).
    App,
    /// A person's browser: a readable HTML page.
    Person,
}

/// Which cross-origin reads an endpoint allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossOrigin {
    /// None: pages and redirects are navigations, never fetched by other origins.
    Never,
    /// Browser apps at the origins of registered redirect URIs (the CORS middleware).
    RegisteredOrigins,
    /// Any origin (`Access-Control-Allow-Origin: *`, set by the handler): public documents.
    AnyOrigin,
}

/// A mounted path: its methods, its audience and its CORS rule.
#[derive(Debug)]
pub struct Endpoint {
    /// The path, exactly as mounted.
    pub path: &'static str,
    /// The methods its handlers accept (`HEAD` is implied by `GET`).
    pub methods: &'static [Method],
    /// Who reads its answers.
    pub audience: Audience,
    /// Its CORS rule.
    pub cross_origin: CrossOrigin,
    /// The per-source request budget it spends (`[limits]`), if any.
    pub limit: Option<RequestKind>,
}

impl Endpoint {
    fn accepts(&self, method: &Method) -> bool {
        self.methods.contains(method) || (*method == Method::HEAD && self.accepts(&Method::GET))
    }

    /// The `Allow` header value (RFC 9110 §10.2.1): the methods, with `HEAD` after `GET`.
    fn allow(&self) -> String {
        let mut names = Vec::new();
        for method in self.methods {
            names.push(method.as_str());
            if *method == Method::GET {
                names.push(Method::HEAD.as_str());
            }
        }
        names.join(", ")
    }
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

/// Every path `routes::configure` mounts. A new endpoint is added here too: this table answers
/// wrong methods, `HEAD` and CORS for it (`tests/api/http_edges.rs` checks each entry works).
pub const ENDPOINTS: &[Endpoint] = &[
    endpoint(
        "/.well-known/openid-configuration",
        GET,
        Audience::App,
        CrossOrigin::AnyOrigin,
    ),
    endpoint("/jwks.json", GET, Audience::App, CrossOrigin::AnyOrigin),
    endpoint("/authorize", GET_POST, Audience::Person, CrossOrigin::Never)
        .limited(RequestKind::Authorize),
    endpoint(
        "/callback/discord",
        GET,
        Audience::Person,
        CrossOrigin::Never,
    )
    .limited(RequestKind::Authorize),
    endpoint("/consent", POST, Audience::Person, CrossOrigin::Never),
    endpoint(
        "/token",
        POST,
        Audience::App,
        CrossOrigin::RegisteredOrigins,
    )
    .limited(RequestKind::Token),
    endpoint("/par", POST, Audience::App, CrossOrigin::RegisteredOrigins)
        .limited(RequestKind::Token),
    endpoint(
        "/device_authorization",
        POST,
        Audience::App,
        CrossOrigin::RegisteredOrigins,
    )
    .limited(RequestKind::Token),
    endpoint("/device", GET_POST, Audience::Person, CrossOrigin::Never)
        .limited(RequestKind::Authorize),
    endpoint("/device/answer", POST, Audience::Person, CrossOrigin::Never)
        .limited(RequestKind::Authorize),
    endpoint(
        "/userinfo",
        GET_POST,
        Audience::App,
        CrossOrigin::RegisteredOrigins,
    )
    .limited(RequestKind::Userinfo),
    endpoint(
        "/revoke",
        POST,
        Audience::App,
        CrossOrigin::RegisteredOrigins,
    )
    .limited(RequestKind::Token),
    endpoint(
        "/introspect",
        POST,
        Audience::App,
        CrossOrigin::RegisteredOrigins,
    )
    .limited(RequestKind::Token),
    endpoint("/logout", GET_POST, Audience::Person, CrossOrigin::Never),
    endpoint("/account", GET, Audience::Person, CrossOrigin::Never),
    endpoint(
        "/account/sign-in",
        GET,
        Audience::Person,
        CrossOrigin::Never,
    ),
    endpoint(
        "/account/revoke",
        POST,
        Audience::Person,
        CrossOrigin::Never,
    ),
    endpoint(
        "/account/end-session",
        POST,
        Audience::Person,
        CrossOrigin::Never,
    ),
    endpoint(
        "/account/sign-out-everywhere",
        POST,
        Audience::Person,
        CrossOrigin::Never,
    ),
    endpoint("/healthz", GET, Audience::App, CrossOrigin::Never),
    endpoint("/readyz", GET, Audience::App, CrossOrigin::Never),
];

const fn endpoint(
    path: &'static str,
    methods: &'static [Method],
    audience: Audience,
    cross_origin: CrossOrigin,
) -> Endpoint {
    Endpoint {
        path,
        methods,
        audience,
        cross_origin,
        limit: None,
    }
}

impl Endpoint {
    const fn limited(self, kind: RequestKind) -> Self {
        Self {
            limit: Some(kind),
            ..self
        }
    }
}

/// The mounted endpoint at `path`, if any.
pub fn endpoint_at(path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.path == path)
}

/// The longest query string accepted (8 KiB, the request-line size most proxies allow). A longer
/// one is answered 414 (RFC 9110 §15.5.15) rather than reaching a handler.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// The largest form body accepted; every form guildgate reads is a few hundred bytes.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// The longest single parameter value, decoded: values such as `state` and `nonce` travel into
/// redirects and tokens, so an oversized one in a form body is refused here, not echoed (in a
/// query string the query limit comes first).
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Why the edge refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    QueryTooLong,
    BodyTooLarge,
    ValueTooLong,
    NotUtf8,
    UnreadableBody,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Self::QueryTooLong => StatusCode::URI_TOO_LONG,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ValueTooLong | Self::NotUtf8 | Self::UnreadableBody => StatusCode::BAD_REQUEST,
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::QueryTooLong => "the query string is longer than 8 KiB",
            Self::BodyTooLarge => "the request body is larger than 64 KiB",
            Self::ValueTooLong => "a parameter value is longer than 8 KiB",
            Self::NotUtf8 => "a parameter does not percent-decode to valid UTF-8",
            Self::UnreadableBody => "the request body could not be read",
        }
    }

    fn respond(self, audience: Audience) -> HttpResponse {
        match audience {
            Audience::App => with_status(
                OAuthError::new(OAuthErrorCode::InvalidRequest, self.description())
                    .error_response(),
                self.status(),
            ),
            Audience::Person => PageError::new(
                self.status(),
                "This request cannot be read",
                match self {
                    Self::QueryTooLong | Self::BodyTooLarge | Self::ValueTooLong => {
                        "The link or form that brought you here carries more data than this service accepts. Go back to the app and try again; if it keeps happening, tell the app's administrator."
                    }
                    Self::NotUtf8 | Self::UnreadableBody => {
                        "The link or form that brought you here is malformed. Go back to the app and try again; if it keeps happening, tell the app's administrator."
                    }
                },
            )
            .error_response(),
        }
    }
}

/// An OAuth2 error answer with a status other than its code's usual one (405, 413, 414): the
/// body and headers stay those `error.rs` writes.
fn with_status(mut response: HttpResponse, status: StatusCode) -> HttpResponse {
    *response.status_mut() = status;
    response
}

/// Checks a query string or form body: its values must decode to UTF-8 (RFC 3986 §2.5 leaves the
/// charset to the application; OAuth2 parameters are UTF-8, RFC 6749 Appendix B) and none may be
/// longer than [`MAX_VALUE_BYTES`].
fn check_parameters(raw: &[u8]) -> Result<(), Refusal> {
    let pairs = form::decode_strict(raw).map_err(|_| Refusal::NotUtf8)?;
    if pairs.iter().any(|(_, value)| value.len() > MAX_VALUE_BYTES) {
        return Err(Refusal::ValueTooLong);
    }
    Ok(())
}

/// The edge middleware, for mounted paths only: a method the path does not accept is 405;
/// `HEAD` becomes `GET` where `GET` is served (actix still sends no body, RFC 9110 §9.3.2); then
/// the query and any form body are checked before routing. Form bodies are read here (bounded)
/// and handed on unchanged.
pub async fn edge_checks(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    let Some(endpoint) = endpoint_at(req.path()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    // Answered here rather than by routing: actix answers a resource's other methods itself,
    // with an empty body.
    if !endpoint.accepts(req.method()) {
        let response = method_not_allowed(endpoint);
        return Ok(req.into_response(response).map_into_right_body());
    }
    if *req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    // Before the body is read: a source over its budget costs as little as possible.
    if let Some(wait) = over_source_limit(&req, endpoint) {
        let response = too_many_requests(endpoint.audience, wait);
        return Ok(req.into_response(response).map_into_right_body());
    }
    if let Err(refusal) = check_request(&mut req).await {
        let response = refusal.respond(endpoint.audience);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// How long the request's source must wait, when the endpoint's per-source budget is spent.
fn over_source_limit(req: &ServiceRequest, endpoint: &Endpoint) -> Option<std::time::Duration> {
    let kind = endpoint.limit?;
    let state = req.app_data::<actix_web::web::Data<AppState>>()?;
    let source = crate::client_ip::resolve(
        req.peer_addr(),
        req.headers(),
        req.app_data::<crate::client_ip::TrustedProxies>(),
    );
    let wait = state
        .limiters
        .source(kind, source, &state.config().limits, state.clock.now())
        .err()?;
    tracing::warn!(
        %source,
        ?kind,
        retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        "request refused: the source is over its [limits] rate"
    );
    Some(wait)
}

/// 429 with `Retry-After` (RFC 6585 §4): an OAuth2 JSON error for apps, a page for people.
fn too_many_requests(audience: Audience, wait: std::time::Duration) -> HttpResponse {
    match audience {
        Audience::App => {
            OAuthError::rate_limited("too many requests; retry later", wait).error_response()
        }
        Audience::Person => {
            let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let mut response = PageError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Too many sign-in requests came from your network. Please wait a few seconds, then go back to the app and try again.",
            )
            .error_response();
            if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

async fn check_request(req: &mut ServiceRequest) -> Result<(), Refusal> {
    let query = req.query_string();
    if query.len() > MAX_QUERY_BYTES {
        return Err(Refusal::QueryTooLong);
    }
    check_parameters(query.as_bytes())?;
    if *req.method() != Method::POST || !form::is_form(req.request()) {
        return Ok(());
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES as u64) {
        return Err(Refusal::BodyTooLarge);
    }
    let payload = req
        .extract::<actix_web::web::Payload>()
        .await
        .map_err(|_| Refusal::UnreadableBody)?;
    let body: Bytes = match payload.to_bytes_limited(MAX_FORM_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(Refusal::UnreadableBody),
        Err(_) => return Err(Refusal::BodyTooLarge),
    };
    let checked = check_parameters(&body);
    // The handler reads the same bytes again.
    req.set_payload(actix_web::dev::Payload::from(body));
    checked
}

/// What routing could not place: 404 for an unknown path (a mounted path with another method
/// was already answered by [`edge_checks`]; should routing and the table ever disagree, it is
/// still a 405 here rather than a 404).
pub async fn not_routed(req: HttpRequest) -> HttpResponse {
    match endpoint_at(req.path()) {
        Some(endpoint) => method_not_allowed(endpoint),
        None => PageError::new(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is nothing at this address.",
        )
        .error_response(),
    }
}

/// 405 with `Allow` (RFC 9110 §15.5.6): an OAuth2 JSON error for apps, a page for people.
fn method_not_allowed(endpoint: &Endpoint) -> HttpResponse {
    let allow = endpoint.allow();
    let mut response = match endpoint.audience {
        Audience::App => with_status(
            OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                format!("this endpoint accepts {allow}"),
            )
            .error_response(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        Audience::Person => PageError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "This address cannot be used this way",
            "Go back to the app and start again from there.",
        )
        .error_response(),
    };
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_head_after_get() {
        let authorize = endpoint_at("/authorize").expect("mounted");
        assert_eq!(authorize.allow(), "GET, HEAD, POST");
        assert_eq!(endpoint_at("/token").expect("mounted").allow(), "POST");
        assert!(authorize.accepts(&Method::HEAD));
        assert!(
            !endpoint_at("/token")
                .expect("mounted")
                .accepts(&Method::HEAD)
        );
    }

    #[test]
    fn parameters_must_decode_to_utf8_and_stay_short() {
        assert_eq!(check_parameters(b"state=caf%C3%A9&x=1+2"), Ok(()));
        assert_eq!(check_parameters(b"state=%FF"), Err(Refusal::NotUtf8));
        assert_eq!(check_parameters(b"%C3=1"), Err(Refusal::NotUtf8));
        let long = format!("state={}", "a".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(
            check_parameters(long.as_bytes()),
            Err(Refusal::ValueTooLong)
        );
    }

    #[test]
    fn paths_are_matched_exactly() {
        assert!(endpoint_at("/token").is_some());
        assert!(endpoint_at("/token/").is_none());
        assert!(endpoint_at("/TOKEN").is_none());
    }
}
