//! `[ui]`: the operator's branding of every page (title, logo, accent colour) and a folder of
//! templates that replace the built-in ones of the same name; checked like every other key.

use super::validate::Checker;
use crate::domain::is_loopback;
use serde::Deserialize;
use std::path::PathBuf;
use url::Url;

/// `[ui]` as written.
#[derive(Debug, Clone, Deserialize)]
pub struct UiSettings {
    /// Shown on every page (window title and footer).
    pub title: String,
    /// An image shown at the top of every page; https (or http on a loopback host).
    pub logo_url: String,
    /// The colour of buttons and links: a CSS hex colour or an `rgb()`/`hsl()` value.
    pub accent: String,
    /// A folder whose `*.html` files replace the built-in templates of the same name.
    pub templates_dir: String,
}

/// `[ui]` validated: what the pages are rendered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidUi {
    /// Page title.
    pub title: String,
    /// Logo, if any.
    pub logo_url: Option<Url>,
    /// Accent colour, a CSS value safe inside the page's stylesheet.
    pub accent: String,
    /// Templates read from `templates_dir`: (file name, source), sorted by name.
    pub templates: Vec<(String, String)>,
}

impl ValidUi {
    /// The defaults (`config/default.toml`): no logo, no overrides.
    pub fn built_in() -> Self {
        Self {
            title: "guildgate".to_owned(),
            logo_url: None,
            accent: "#5865f2".to_owned(),
            templates: Vec::new(),
        }
    }

    /// Whether this is exactly the built-in branding.
    pub fn is_built_in(&self) -> bool {
        *self == Self::built_in()
    }
}

/// Largest template file read (a page is a few KiB; this catches a wrong folder).
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// Checks `[ui]`, reading the templates folder; every problem goes to `c`.
pub(super) fn check(c: &mut Checker, ui: &UiSettings) -> ValidUi {
    if ui.title.trim().is_empty() || ui.title.chars().count() > 100 {
        c.problem("ui.title", "must be 1 to 100 characters");
    }
    let logo_url = if ui.logo_url.is_empty() {
        None
    } else {
        c.check("ui.logo_url", logo(&ui.logo_url))
    };
    if !is_css_colour(&ui.accent) {
        c.problem(
            "ui.accent",
            format!(
                "{:?} is not a CSS colour like \"#5865f2\", \"rgb(88 101 242)\" or \"hsl(235 86% 65%)\"",
                ui.accent
            ),
        );
    }
    let templates = if ui.templates_dir.is_empty() {
        Vec::new()
    } else {
        read_templates(c, &PathBuf::from(&ui.templates_dir))
    };
    ValidUi {
        title: ui.title.trim().to_owned(),
        logo_url,
        accent: ui.accent.trim().to_owned(),
        templates,
    }
}

fn logo(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err("must be an https URL (http only on localhost)".into()),
    }
    if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err("must name a host and carry no credentials".into());
    }
    Ok(url)
}

/// A hex colour (`#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`) or an `rgb()`, `rgba()`, `hsl()`,
/// `hsla()` value of numbers, so nothing can end the stylesheet's declaration it sits in.
pub fn is_css_colour(raw: &str) -> bool {
    let raw = raw.trim();
    if let Some(hex) = raw.strip_prefix('#') {
        return matches!(hex.len(), 3 | 4 | 6 | 8) && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    let Some((name, rest)) = raw.split_once('(') else {
        return false;
    };
    let Some(args) = rest.strip_suffix(')') else {
        return false;
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "rgb" | "rgba" | "hsl" | "hsla"
    ) && !args.trim().is_empty()
        && args
            .chars()
            .all(|c| c.is_ascii_digit() || " .,%/".contains(c) || c == 'd' || c == 'e' || c == 'g')
}

fn read_templates(c: &mut Checker, dir: &std::path::Path) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            c.problem(
                "ui.templates_dir",
                format!("cannot read the folder {} ({e})", dir.display()),
            );
            return Vec::new();
        }
    };
    let mut templates = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !name.ends_with(".html") || !path.is_file() {
            continue;
        }
        let too_big = entry.metadata().is_ok_and(|m| m.len() > MAX_TEMPLATE_BYTES);
        if too_big {
            c.problem(
                "ui.templates_dir",
                format!("{} is larger than 256 KiB", path.display()),
            );
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(source) => templates.push((name, source)),
            Err(e) => c.problem(
                "ui.templates_dir",
                format!("cannot read {} ({e})", path.display()),
            ),
        }
    }
    templates.sort();
    for (name, source) in &templates {
        if let Err(e) = crate::pages::check_template(name, source) {
            c.problem(
                "ui.templates_dir",
                format!("{name} is not a valid template: {e}"),
            );
        }
    }
    templates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accent_colours_are_css_colours_and_nothing_else() {
        for ok in [
            "#5865f2",
            "#FFF",
            "#12345678",
            "rgb(88 101 242)",
            "rgba(88, 101, 242, .5)",
            "hsl(235deg 86% 65%)",
        ] {
            assert!(is_css_colour(ok), "{ok}");
        }
        for bad in [
            "",
            "red; } body { display: none",
            "#12",
            "#ggg",
            "url(https://x)",
            "rgb(1,2,3));",
            "expression(alert(1))",
            "rgb()",
        ] {
            assert!(!is_css_colour(bad), "{bad}");
        }
    }

    #[test]
    fn logos_are_https_or_loopback_http() {
        assert!(logo("https://cdn.example.com/logo.png").is_ok());
        assert!(logo("http://127.0.0.1:8080/logo.png").is_ok());
        assert!(logo("http://example.com/logo.png").is_err());
        assert!(logo("data:image/png;base64,AAAA").is_err());
        assert!(logo("javascript:alert(1)").is_err());
    }
}
