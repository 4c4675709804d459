//! Link-time settings for the `guildgate` binary.

fn main() {
    // Relative relocations packed as DT_RELR (glibc 2.36+, binutils 2.38+: Debian 12 and the
    // Dockerfile's bookworm images): the dynamic loader reads a few kilobytes at start instead of
    // a 700 KB relocation table, which stayed resident for the life of the process.
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var_os("GUILDGATE_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=GUILDGATE_NO_RELR");
}
