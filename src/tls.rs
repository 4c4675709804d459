//! Outbound HTTPS (Discord, back-channel logout, the demo app): one crypto provider.
//!
//! rustls is built with aws-lc-rs only, the library that already signs our tokens, so the
//! binary carries one crypto stack instead of ring beside it. reqwest built without a provider
//! takes rustls's process default, which must be installed before the first client is built:
//! every client in the library comes from [`client_builder`], which does that once.

use std::sync::Once;

/// An HTTP client builder whose TLS runs on the process's one crypto provider.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Installs aws-lc-rs as rustls's process-wide provider (once; a provider someone else
/// installed first is kept).
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider is installed already: that one serves.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
