//! Discord avatar URLs (Discord's "Image Formatting" reference), in one place.

/// Discord's CDN for avatars.
const CDN: &str = "https://cdn.discordapp.com";

/// `avatars/{id}/{hash}.png`, or `.gif` for animated (`a_`) hashes; without an avatar, the
/// default avatar: `(id >> 22) % 6` on the new username system (discriminator `"0"` or
/// unknown), `discriminator % 5` for legacy users.
pub fn avatar_url(user_id: &str, avatar: Option<&str>, discriminator: Option<&str>) -> String {
    match avatar {
        Some(hash) if !hash.is_empty() => {
            let ext = if hash.starts_with("a_") { "gif" } else { "png" };
            format!("{CDN}/avatars/{user_id}/{hash}.{ext}")
        }
        _ => {
            let legacy = discriminator
                .and_then(|d| d.parse::<u64>().ok())
                .filter(|d| *d != 0);
            let index = match legacy {
                Some(d) => d % 5,
                None => user_id.parse::<u64>().map_or(0, |id| (id >> 22) % 6),
            };
            format!("{CDN}/embed/avatars/{index}.png")
        }
    }
}

/// A member's server avatar (Discord's "Guild Member Avatar"):
/// `guilds/{guild_id}/users/{user_id}/avatars/{hash}.png`, or `.gif` for animated hashes.
pub fn guild_avatar_url(guild_id: &str, user_id: &str, hash: &str) -> String {
    let ext = if hash.starts_with("a_") { "gif" } else { "png" };
    format!("{CDN}/guilds/{guild_id}/users/{user_id}/avatars/{hash}.{ext}")
}
