//! HTML pages for people (errors, pickers, consent, denial, the account page, the demo app):
//! minijinja templates, autoescaped, branded by `[ui]`, and the Content-Security-Policy that
//! allows exactly their one stylesheet and images.
//!
//! The branded set is per application (tests run several in one process), and pages are
//! rendered deep inside handlers and in `error.rs`'s `ResponseError` impls, which have no
//! request at hand. So the security-headers middleware runs each request inside
//! [`Pages::scope`], a task-local that [`render`] reads; outside it (the demo app, the fake
//! Discord, an error raised before routing) the built-in, unbranded set answers. The policy
//! allows both sets' stylesheets, so either renders correctly under it.

use crate::config::ValidUi;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use minijinja::Environment;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};

/// The built-in templates: (name, source). README "Branding" documents each one's variables.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("demo.html", include_str!("../templates/demo.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("denied.html", include_str!("../templates/denied.html")),
    ("account.html", include_str!("../templates/account.html")),
    ("device.html", include_str!("../templates/device.html")),
    (
        "device_confirm.html",
        include_str!("../templates/device_confirm.html"),
    ),
];

/// Where Discord serves avatars (the account page and the demo app show them).
const AVATAR_ORIGIN: &str = "https://cdn.discordapp.com";

/// The branding every page sees as `ui`.
#[derive(Debug, Clone, Serialize)]
struct UiContext {
    title: String,
    logo_url: Option<String>,
    accent: String,
}

/// One application's page set: templates (built-in, then overrides), branding, and the CSP.
pub struct Pages {
    env: Environment<'static>,
    ui: UiContext,
    policy: String,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("ui", &self.ui)
            .finish_non_exhaustive()
    }
}

/// The unbranded set, used outside a [`Pages::scope`].
static BUILT_IN_PAGES: LazyLock<Arc<Pages>> =
    LazyLock::new(|| Arc::new(Pages::new(&ValidUi::built_in())));

tokio::task_local! {
    static CURRENT: Arc<Pages>;
}

impl Pages {
    /// The page set for this `[ui]`: the templates folder's files replace built-ins of the same
    /// name (validation already compiled each one, so a failure here only logs).
    pub fn new(ui: &ValidUi) -> Self {
        let mut env = Environment::new();
        for (name, source) in BUILT_IN {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "invalid built-in template");
            }
        }
        for (name, source) in &ui.templates {
            if let Err(e) = env.add_template_owned(name.clone(), source.clone()) {
                tracing::error!(template = %name, error = %e, "invalid template in ui.templates_dir");
            }
        }
        let mut pages = Self {
            env,
            ui: UiContext {
                title: ui.title.clone(),
                logo_url: ui.logo_url.as_ref().map(|u| u.to_string()),
                accent: ui.accent.clone(),
            },
            policy: String::new(),
        };
        let mut styles = vec![pages.style_hash()];
        if !ui.is_built_in() {
            // Pages rendered outside the scope use the built-in set: allow its stylesheet too.
            styles.push(built_in_style_hash());
        }
        styles.dedup();
        let mut images = vec!["'self'".to_owned(), AVATAR_ORIGIN.to_owned()];
        if let Some(logo) = &ui.logo_url {
            let origin = logo.origin().ascii_serialization();
            if !images.contains(&origin) {
                images.push(origin);
            }
        }
        pages.policy = format!(
            "default-src 'none'; style-src {}; img-src {}; base-uri 'none'; frame-ancestors 'none'",
            styles.join(" "),
            images.join(" ")
        );
        pages
    }

    /// The built-in, unbranded set.
    pub fn built_in() -> Arc<Self> {
        BUILT_IN_PAGES.clone()
    }

    /// The Content-Security-Policy for this set's pages: their stylesheet(s) by hash (no
    /// `unsafe-inline`, no scripts), images from us, Discord's avatar CDN and the logo's origin.
    pub fn content_security_policy(&self) -> &str {
        &self.policy
    }

    /// Runs `f` (a request) with this set as the one [`render`] uses.
    pub async fn scope<F: std::future::Future>(self: Arc<Self>, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    /// Renders a template with `ui` added to the context; on a template bug a minimal page.
    pub fn render<S: Serialize>(&self, name: &str, context: S) -> String {
        let context =
            minijinja::context! { ui => &self.ui, ..minijinja::Value::from_serialize(&context) };
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .unwrap_or_else(|e| {
                tracing::error!(template = name, error = %e, "cannot render page");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
            })
    }

    /// `'sha256-…'` of the stylesheet base.html renders with this branding.
    fn style_hash(&self) -> String {
        style_hash(&self.render("base.html", minijinja::context! { title => "" }))
            .unwrap_or_default()
    }
}

fn built_in_style_hash() -> String {
    BUILT_IN_PAGES.style_hash()
}

/// `'sha256-…'` of the text inside the page's `<style>` element (CSP Level 2 §4.2.4).
pub fn style_hash(html: &str) -> Option<String> {
    let start = html.find("<style>")? + "<style>".len();
    let end = start + html[start..].find("</style>")?;
    Some(format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(&html.as_bytes()[start..end]))
    ))
}

/// Whether an operator's template compiles (for `ui.templates_dir` validation).
pub fn check_template(name: &str, source: &str) -> Result<(), String> {
    let mut env = Environment::new();
    env.add_template(name, source).map_err(|e| e.to_string())
}

/// Renders with the current request's page set (see the module docs).
pub fn render<S: Serialize>(name: &str, context: S) -> String {
    CURRENT
        .try_with(|pages| pages.render(name, &context))
        .unwrap_or_else(|_| BUILT_IN_PAGES.render(name, &context))
}

/// Escapes text for HTML content and for attribute values in double or single quotes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// A link button under a message; with `fields`, a button that posts them to `href` (an
/// authorization response in `response_mode=form_post`).
#[derive(Serialize)]
pub struct Link<'a> {
    /// Target.
    pub href: &'a str,
    /// Text.
    pub label: &'a str,
    /// Form fields to post instead of following the link.
    pub fields: &'a [(&'static str, String)],
}

impl<'a> Link<'a> {
    /// A plain link.
    pub fn to(href: &'a str, label: &'a str) -> Self {
        Self {
            href,
            label,
            fields: &[],
        }
    }
}

/// A page with a heading and a paragraph.
pub fn message_page(title: &str, message: &str) -> String {
    render(
        "message.html",
        minijinja::context! { title => title, message => message, link => Option::<Link>::None },
    )
}

/// A page with a heading, a paragraph and one link button.
pub fn message_page_with_link(title: &str, message: &str, link: Link<'_>) -> String {
    render(
        "message.html",
        minijinja::context! { title => title, message => message, link => link },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
    }

    #[test]
    fn message_page_escapes_reflected_values() {
        let html = message_page("<b>Oops</b>", "<script>alert(1)</script>");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;b&gt;Oops"));
    }

    #[test]
    fn the_style_hash_covers_exactly_the_style_elements_text() {
        let html = "<head><style>\n  body { margin: 0 }\n</style></head>";
        let expected = format!(
            "'sha256-{}'",
            STANDARD.encode(Sha256::digest(b"\n  body { margin: 0 }\n"))
        );
        assert_eq!(style_hash(html), Some(expected));
        assert_eq!(style_hash("<p>no style</p>"), None);
    }

    #[test]
    fn branding_reaches_the_page_and_the_policy() {
        let pages = Pages::new(&ValidUi {
            title: "Acme SSO".to_owned(),
            logo_url: Some(url::Url::parse("https://static.acme.test/logo.svg").unwrap()),
            accent: "#ff0066".to_owned(),
            templates: vec![(
                "message.html".to_owned(),
                "{% extends \"base.html\" %}{% block content %}<h1>Custom: {{ title }}</h1>{% endblock %}"
                    .to_owned(),
            )],
        });
        let html = pages.render("message.html", minijinja::context! { title => "Hi" });
        assert!(html.contains("Custom: Hi"), "{html}");
        assert!(html.contains("#ff0066"), "{html}");
        assert!(html.contains("Acme SSO"), "{html}");
        // Autoescaped: `/` is written `&#x2f;`.
        assert!(
            html.contains("src=\"https:&#x2f;&#x2f;static.acme.test&#x2f;logo.svg\""),
            "{html}"
        );
        let policy = pages.content_security_policy();
        assert!(policy.contains(&style_hash(&html).unwrap()), "{policy}");
        assert!(
            policy.contains("img-src 'self' https://cdn.discordapp.com https://static.acme.test"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"));
    }
}
