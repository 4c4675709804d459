//! Link-time settings for the `guildgate` binary.

use std::env::var;

fn main() {
    // Relative relocations packed as DT_RELR (glibc 2.36+, binutils 2.38+: Debian 12 and the
    // Dockerfile's bookworm images): the dynamic loader reads a few kilobytes at start instead of
    // a 700 KB relocation table, which stayed resident for the life of the process.
    let linux_gnu = var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var_os("GUILDGATE_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=GUILDGATE_NO_RELR");

    // Start-up code laid out together (link/startup.order, written by link/record-startup-order).
    // The kernel maps a binary's code in runs around each page touched, and start-up touches
    // functions spread over all 15 MB of it, so an idle process kept about 11 MB of code
    // resident; with the order it keeps 4–6 MB. Only LLD takes the file, and rustc links
    // x86_64 Linux with its own LLD from 1.90 unless the flags choose another linker.
    println!("cargo:rerun-if-changed=link/startup.order");
    println!("cargo:rerun-if-env-changed=GUILDGATE_NO_LINK_ORDER");
    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("link/startup.order");
    if linux_gnu
        && var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && var("PROFILE").as_deref() == Ok("release")
        && std::env::var_os("GUILDGATE_NO_LINK_ORDER").is_none()
        && links_with_rust_lld()
        && order.exists()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names of another build (features, a newer dependency) are expected: skip them quietly.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links with its bundled LLD: 1.90 or newer, and no flag picking the linker.
fn links_with_rust_lld() -> bool {
    let flags = var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "fuse-ld", "link-self-contained"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
