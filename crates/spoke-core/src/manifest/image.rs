//! Image references in docker module settings (edge contracts spec §3.1; edgeAgent's
//! `DockerConfig.ValidateAndGetImage`).
//!
//! edgeAgent checks images against a deliberately loose pattern,
//! `^(repo/)*name(:tag)?$` where `name` and `tag` hold no `/` or `:`, and adds `:latest`
//! when the last path segment has no tag. A registry port (`localhost:5000/app`) is part of
//! the repository path, and a digest (`app@sha256:...`) reads as a tag, so both pass. The
//! nested-edge form `$upstream:443/repo:tag` passes unchanged; the runtime replaces
//! `$upstream` with the parent's hostname when it pulls.

/// The tag edgeAgent adds to an image reference without one.
pub const DEFAULT_TAG: &str = "latest";

/// Trims `image` and adds `:latest` if its last path segment has no tag. `None` when the
/// reference is blank or malformed (an empty name or tag, or more than one `:` in the last
/// segment).
///
/// ```
/// use spoke_core::manifest::normalize_image;
/// assert_eq!(normalize_image("mcr.microsoft.com/azureiotedge-agent").as_deref(),
///            Some("mcr.microsoft.com/azureiotedge-agent:latest"));
/// assert_eq!(normalize_image(" localhost:5000/app:1.2 ").as_deref(), Some("localhost:5000/app:1.2"));
/// assert_eq!(normalize_image("app:"), None);
/// ```
pub fn normalize_image(image: &str) -> Option<String> {
    let image = image.trim();
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None if !last.is_empty() => Some(format!("{image}:{DEFAULT_TAG}")),
        Some((name, tag)) if !name.is_empty() && !tag.is_empty() && !tag.contains(':') => {
            Some(image.to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_latest_only_without_a_tag() {
        let cases = [
            ("app", "app:latest"),
            ("app:1.0", "app:1.0"),
            (
                "myacr.azurecr.io/team/app",
                "myacr.azurecr.io/team/app:latest",
            ),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost:5000/app:2", "localhost:5000/app:2"),
            ("app@sha256:abcd", "app@sha256:abcd"),
            (
                "$upstream:443/azureiotedge-agent:1.5",
                "$upstream:443/azureiotedge-agent:1.5",
            ),
            (
                "<Container_Registry>/x:<Build>-linux",
                "<Container_Registry>/x:<Build>-linux",
            ),
            ("  app  ", "app:latest"),
            ("//app", "//app:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_image(input).as_deref(), Some(want), "{input:?}");
            assert_eq!(
                normalize_image(want).as_deref(),
                Some(want),
                "idempotent {want:?}"
            );
        }
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "",
            "   ",
            "app:",
            ":1.0",
            "a:b:c",
            "repo/",
            "repo/:tag",
            "x/app:1:2",
        ] {
            assert_eq!(normalize_image(bad), None, "{bad:?}");
        }
    }
}
