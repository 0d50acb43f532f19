//! Branch names made into valid, collision-free image tags. Pure logic.

use crate::oci::reference::{is_tag_byte, MAX_TAG_LEN};
use sha2::{Digest, Sha256};

/// Hex digits of the hash kept when sanitizing loses information.
const HASH_LEN: usize = 10;

/// Turn a branch name into a valid image tag.
///
/// 1. Each run of characters outside `[A-Za-z0-9._-]` becomes one `-`
///    (`my/feature#1245` → `my-feature-1245`, as docker/metadata-action does).
/// 2. Leading `.` and `-` are dropped (a tag must start with `[A-Za-z0-9_]`).
/// 3. Where that loses information beyond the punctuation of rule 1 (the name
///    had non-ASCII characters, had to lose its first characters, or is longer
///    than 128 bytes), the readable part is kept and `-` plus the first 10 hex
///    digits of the SHA-256 of the original name is appended, so two different
///    branches never share a tag. A name with no readable part at all becomes
///    `branch-<hash>`.
/// 4. A name that already ends in `-` and 10 hex digits gets the hash too:
///    only names of rule 3 end that way, so a branch can never be given the
///    tag another branch was mapped to.
///
/// Deterministic: the same name gives the same tag on every machine.
pub fn sanitize_branch(name: &str) -> String {
    branch_tag(name, false)
}

/// The tag of a branch whose plain tag another stage owns (`release-v3.8.3`,
/// `latest`, `v3.8.3`, `rc0`): `branch-` + the readable part + `-` + the hash
/// of rule 3 of [`sanitize_branch`] (`branch-release-v3.8.3-<hash>`). The
/// prefix keeps it from being version-shaped; the hash keeps it apart from
/// every other branch's tag.
pub fn distinct_branch_tag(name: &str) -> String {
    branch_tag(name, true)
}

fn branch_tag(name: &str, reserved: bool) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii() && is_tag_byte(c as u8) {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let had_non_ascii = !name.is_ascii();
    let trimmed = out.trim_start_matches(['.', '-']);
    let lost_start = trimmed.len() != out.len();
    let too_long = trimmed.len() > MAX_TAG_LEN;

    if !(reserved
        || had_non_ascii
        || lost_start
        || too_long
        || trimmed.is_empty()
        || looks_hashed(trimmed))
    {
        return trimmed.to_string();
    }
    let hash = short_hash(name);
    let prefix = if reserved { "branch-" } else { "" };
    // Room for the prefix, "-" and the hash; the readable part never ends in
    // a separator.
    let room = MAX_TAG_LEN - prefix.len() - 1 - HASH_LEN;
    let readable = trimmed[..trimmed.len().min(room)].trim_end_matches(['.', '-']);
    if readable.is_empty() {
        format!("branch-{hash}")
    } else {
        format!("{prefix}{readable}-{hash}")
    }
}

/// Whether a tag ends the way rule 3 of [`sanitize_branch`] ends its tags.
fn looks_hashed(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    bytes.len() > HASH_LEN + 1
        && bytes[bytes.len() - HASH_LEN - 1] == b'-'
        && bytes[bytes.len() - HASH_LEN..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(HASH_LEN)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::reference::is_valid_tag;

    #[test]
    fn punctuation_runs_become_one_dash() {
        assert_eq!(sanitize_branch("my/feature#1245"), "my-feature-1245");
        assert_eq!(sanitize_branch("feat//a  b"), "feat-a-b");
        assert_eq!(sanitize_branch("release-v3.8"), "release-v3.8");
        assert_eq!(sanitize_branch("Fix_Bug-1"), "Fix_Bug-1");
        assert_eq!(
            sanitize_branch("dependabot/go_modules/x-1.2"),
            "dependabot-go_modules-x-1.2"
        );
    }

    #[test]
    fn non_ascii_names_keep_a_readable_part_and_a_hash() {
        let a = sanitize_branch("功能分支");
        let b = sanitize_branch("修复分支");
        assert!(a.starts_with("branch-"), "{a}");
        assert_ne!(a, b);
        assert!(is_valid_tag(&a) && is_valid_tag(&b));
        let mixed = sanitize_branch("feature/登录");
        assert!(mixed.starts_with("feature-"), "{mixed}");
        assert_eq!(mixed.len(), "feature-".len() + HASH_LEN);
        assert_ne!(mixed, sanitize_branch("feature/注册"));
        // deterministic
        assert_eq!(a, sanitize_branch("功能分支"));
    }

    #[test]
    fn leading_separators_are_fixed_without_collisions() {
        let dot = sanitize_branch(".hidden");
        assert!(dot.starts_with("hidden-"), "{dot}");
        assert_ne!(dot, sanitize_branch("hidden"));
        assert_ne!(dot, sanitize_branch("-hidden"));
        assert!(sanitize_branch("#1").starts_with("1-"));
        assert!(is_valid_tag(&sanitize_branch("---")));
    }

    #[test]
    fn long_names_are_capped_and_stay_distinct() {
        let long_a = format!("feature/{}", "a".repeat(200));
        let long_b = format!("feature/{}b", "a".repeat(200));
        let ta = sanitize_branch(&long_a);
        let tb = sanitize_branch(&long_b);
        assert_eq!(ta.len(), MAX_TAG_LEN);
        assert!(is_valid_tag(&ta));
        assert_ne!(ta, tb);
        let exactly = "x".repeat(128);
        assert_eq!(sanitize_branch(&exactly), exactly);
    }

    #[test]
    fn names_shaped_like_hashed_ones_are_hashed_too() {
        // `feature/登录` is mapped to `feature-<hash>`; a branch literally
        // named like that result must not receive the same tag.
        let mapped = sanitize_branch("feature/登录");
        assert_ne!(sanitize_branch(&mapped), mapped);
        assert!(sanitize_branch(&mapped).starts_with(&format!("{mapped}-")));
        // Ten hex digits after a dash trigger it; nine or a non-hex do not.
        assert_eq!(sanitize_branch("issue-123456789"), "issue-123456789");
        assert_eq!(sanitize_branch("fix-abcdefghij"), "fix-abcdefghij");
        assert_ne!(sanitize_branch("fix-0123456789"), "fix-0123456789");
    }

    #[test]
    fn distinct_form_always_differs_from_the_plain_one() {
        for name in [
            "release-v3.8.3",
            "latest",
            "v3.8.3",
            "3.8",
            "nightly",
            "rc0",
        ] {
            let t = distinct_branch_tag(name);
            assert!(t.starts_with(&format!("branch-{name}-")), "{t}");
            assert_eq!(t.len(), "branch-".len() + name.len() + 1 + HASH_LEN);
            assert!(is_valid_tag(&t));
            assert_eq!(t, distinct_branch_tag(name), "deterministic");
        }
        assert_ne!(distinct_branch_tag("latest"), distinct_branch_tag("Latest"));
        let long = distinct_branch_tag(&"v".repeat(300));
        assert_eq!(long.len(), MAX_TAG_LEN);
        assert!(is_valid_tag(&long));
    }

    #[test]
    fn validity() {
        assert!(is_valid_tag("v3.8.1-rc.0"));
        assert!(is_valid_tag("_x"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag(".x"));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag("a/b"));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn every_sanitized_name_is_valid() {
        for name in ["", "/", "a", "é", "..a..", "a\u{0}b", "🚀/launch", "x y z"] {
            let t = sanitize_branch(name);
            assert!(is_valid_tag(&t), "{name:?} -> {t:?}");
        }
    }
}
