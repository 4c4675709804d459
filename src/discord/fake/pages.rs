//! HTML pages of the fake: the user picker standing in for Discord's login + consent, and errors.
//! Plain HTML and inline CSS, no script; every value is escaped.

use super::FakeUser;
use crate::pages::escape_html as escape;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#313338;color:#dbdee1;\
display:flex;justify-content:center;padding:3rem 1rem;margin:0}\
main{background:#2b2d31;border-radius:8px;padding:2rem;max-width:28rem;width:100%}\
h1{font-size:1.25rem;color:#f2f3f5;margin-top:0}p.small{font-size:.85rem;color:#949ba4}\
ul{list-style:none;padding:0}li{margin:.5rem 0}\
a.user{display:block;padding:.75rem 1rem;border-radius:4px;background:#5865f2;color:#fff;text-decoration:none}\
a.user:hover{background:#4752c4}a.user small{display:block;opacity:.8}\
a.cancel{color:#00a8fc}code{background:#1e1f22;padding:0 .25rem;border-radius:3px}";

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Fake Discord</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(html)
}

/// An error page; used when the request cannot safely be redirected back.
pub(super) fn error_page(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p class=\"small\">Fake Discord (guildgate dev)</p>",
        escape(title),
        escape(detail)
    );
    page(status, title, &body)
}

/// The user picker: one link per demo user to approve as that user, and a Cancel link.
/// `query` is the original authorization request, already form-encoded.
pub(super) fn picker(users: &[FakeUser], scopes: &[String], query: &str) -> HttpResponse {
    let mut items = String::new();
    for user in users {
        let shown = user.global_name.as_deref().unwrap_or(&user.username);
        let guilds = match user.memberships.len() {
            0 => "no guilds".to_owned(),
            1 => "1 guild".to_owned(),
            n => format!("{n} guilds"),
        };
        let email = match (&user.email, user.verified) {
            (Some(e), true) => e.clone(),
            (Some(e), false) => format!("{e} (unverified)"),
            (None, _) => "no email".to_owned(),
        };
        let href = format!("/oauth2/authorize/approve?{query}&user_id={}", user.id);
        items.push_str(&format!(
            "<li><a class=\"user\" href=\"{}\">{}<small>@{} · {} · {}</small></a></li>",
            escape(&href),
            escape(shown),
            escape(&user.username),
            escape(&email),
            escape(&guilds),
        ));
    }
    let scope_list = scopes
        .iter()
        .map(|s| format!("<code>{}</code>", escape(s)))
        .collect::<Vec<_>>()
        .join(" ");
    let cancel = format!("/oauth2/authorize/cancel?{query}");
    let body = format!(
        "<h1>Sign in to Discord (fake)</h1>\
         <p>An application wants access to your account: {scope_list}</p>\
         <p>Choose who you are:</p><ul>{items}</ul>\
         <p><a class=\"cancel\" href=\"{}\">Cancel</a></p>\
         <p class=\"small\">This page stands in for Discord's login and consent screens.</p>",
        escape(&cancel)
    );
    page(StatusCode::OK, "Authorize", &body)
}
