//! HTML pages for people (errors, pickers, the demo app): embedded templates, autoescaped.

use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

/// The templates are compile-time constants, so one shared, immutable environment suffices.
static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` names autoescape every reflected value; a broken template is a build-time bug
    // caught by the tests below, so failures here only log.
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("message.html", include_str!("../templates/message.html")),
        ("demo.html", include_str!("../templates/demo.html")),
        ("logout.html", include_str!("../templates/logout.html")),
        ("consent.html", include_str!("../templates/consent.html")),
    ] {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "invalid built-in template");
        }
    }
    env
});

/// Renders a template with a context; on a template bug returns a minimal safe page.
pub fn render<S: Serialize>(name: &str, context: S) -> String {
    PAGES
        .get_template(name)
        .and_then(|t| t.render(context))
        .unwrap_or_else(|e| {
            tracing::error!(template = name, error = %e, "cannot render page");
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
        })
}

/// A link button under a message.
#[derive(Serialize)]
pub struct Link<'a> {
    /// Target.
    pub href: &'a str,
    /// Text.
    pub label: &'a str,
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
    fn message_page_escapes_reflected_values() {
        let html = message_page("<b>Oops</b>", "<script>alert(1)</script>");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;b&gt;Oops"));
    }
}
