//! One rendering of an error for people: its cause chain, outermost first, each cause once.
//!
//! The crate's own error types follow one rule: a type either writes its cause into its own
//! message or exposes it as `source()`, never both (leaf errors such as `StoreError` write it;
//! wrappers such as `StartupError::Store` are transparent; `anyhow` contexts expose it). Some
//! library errors do both (sqlx's "error communicating with database: {0}" also returns the
//! I/O error as its source), so [`render`] also drops a cause whose text is already shown.

use std::error::Error;

/// `outer: cause: root cause`, each distinct message once, for a CLI exit or a log line.
pub fn render(error: &(dyn Error + 'static)) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(current) = next {
        let message = current.to_string();
        let message = message.trim();
        // A cause already spelled out by an outer message adds nothing but noise.
        if !message.is_empty() && !shown.iter().any(|s| s.contains(message)) {
            shown.push(message.to_owned());
        }
        next = current.source();
    }
    shown.join(": ")
}

/// [`render`] for an `anyhow::Error` (the CLI commands' error type).
pub fn render_anyhow(error: &anyhow::Error) -> String {
    render(error.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// An error with a message and an optional exposed source, to build chains by hand.
    #[derive(Debug)]
    struct Link {
        message: &'static str,
        source: Option<Box<Link>>,
    }

    impl fmt::Display for Link {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl Error for Link {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source.as_deref().map(|s| s as &(dyn Error + 'static))
        }
    }

    fn chain(messages: &[&'static str]) -> Link {
        let mut link: Option<Box<Link>> = None;
        for message in messages.iter().rev() {
            link = Some(Box::new(Link {
                message,
                source: link,
            }));
        }
        *link.unwrap()
    }

    #[test]
    fn a_chain_renders_outermost_first_joined_by_colons() {
        // Arrange
        let error = chain(&["a", "b", "c"]);

        // Act
        let rendered = render(&error);

        // Assert
        assert_eq!(rendered, "a: b: c");
    }

    #[test]
    fn a_cause_already_in_an_outer_message_is_shown_once() {
        // Arrange: what sqlx does (shows its I/O error and also returns it as the source).
        let error = chain(&[
            "error communicating with database: Connection refused (os error 111)",
            "Connection refused (os error 111)",
        ]);

        // Act
        let rendered = render(&error);

        // Assert
        assert_eq!(
            rendered,
            "error communicating with database: Connection refused (os error 111)"
        );
    }

    #[test]
    fn a_repeated_wrapper_message_is_shown_once() {
        // Arrange: a wrapper that displays its inner error and also exposes it.
        let error = chain(&[
            "database error: refused",
            "database error: refused",
            "refused",
        ]);

        // Act
        let rendered = render(&error);

        // Assert
        assert_eq!(rendered, "database error: refused");
    }

    #[test]
    fn anyhow_contexts_render_as_one_chain() {
        // Arrange
        let error = anyhow::Error::new(std::io::Error::other("disk full"))
            .context("cannot write the key")
            .context("cannot rotate");

        // Act
        let rendered = render_anyhow(&error);

        // Assert
        assert_eq!(rendered, "cannot rotate: cannot write the key: disk full");
    }
}
