//! Property tests of the pure rules that every tag goes through: the branch
//! sanitizer (`tag::branch`) and the order of version tags
//! (`tag::version`). Case counts are fixed (docs/safety.md lists them).

use openim_release::oci::reference::{is_valid_tag, MAX_TAG_LEN};
use openim_release::tag::branch::{distinct_branch_tag, sanitize_branch};
use openim_release::tag::version::{classify, compare, TagKind};
use proptest::prelude::*;
use semver::Version;
use std::cmp::Ordering;

/// Cases per property (docs/safety.md).
pub const BRANCH_CASES: u32 = 1500;
pub const VERSION_CASES: u32 = 1500;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No regression files in the source tree: a failure prints its input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Branch names

/// Names a user could push: path-like ASCII, punctuation runs, leading dots
/// and dashes, non-ASCII, control characters, long names, and names shaped
/// like the sanitizer's own hashed output.
fn branch_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9._/#@ +~^:-]{0,24}",
        2 => "[ab./#-]{0,8}",
        1 => "[a-z]{1,6}(/|-)[\u{4e00}-\u{4e0f}é🚀]{1,3}",
        1 => "[-.]{1,3}[a-z]{1,5}",
        1 => "[a-z]{1,5}-[0-9a-f]{10}",
        1 => "branch-[a-z]{0,4}-?[0-9a-f]{10}",
        1 => "[a-z/]{120,140}",
        1 => any::<String>(),
        1 => prop::collection::vec(any::<char>(), 0..8).prop_map(|c| c.into_iter().collect()),
    ]
}

/// Rule 1 of `sanitize_branch`: each run of characters outside
/// `[A-Za-z0-9._-]` becomes one `-`. Nothing else.
fn collapse(name: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// Ends in `-` and ten lowercase hex digits (the hashed forms' suffix).
fn ends_hashed(tag: &str) -> bool {
    let b = tag.as_bytes();
    b.len() > 11
        && b[b.len() - 11] == b'-'
        && b[b.len() - 10..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// docs/tag.md: the name keeps its plain form (rule 1 only) exactly when it
/// is ASCII, does not start with `.` or `-` after rule 1, is not empty, fits
/// in 128 bytes and does not already end like a hashed tag.
fn documented_plain(name: &str) -> bool {
    let c = collapse(name);
    name.is_ascii()
        && !c.is_empty()
        && !c.starts_with(['.', '-'])
        && c.len() <= MAX_TAG_LEN
        && !ends_hashed(&c)
}

proptest! {
    #![proptest_config(config(BRANCH_CASES))]

    #[test]
    fn every_branch_tag_is_a_valid_image_tag(name in branch_name()) {
        let plain = sanitize_branch(&name);
        let distinct = distinct_branch_tag(&name);
        prop_assert!(is_valid_tag(&plain), "{name:?} -> {plain:?}");
        prop_assert!(is_valid_tag(&distinct), "{name:?} -> {distinct:?}");
        // Deterministic.
        prop_assert_eq!(&plain, &sanitize_branch(&name));
        prop_assert_eq!(&distinct, &distinct_branch_tag(&name));
    }

    /// Exactly the documented names keep their rule-1 form; every other
    /// name gets a hashed form, which always ends in `-<10 hex>`.
    #[test]
    fn plain_and_hashed_forms_are_as_documented(name in branch_name()) {
        let tag = sanitize_branch(&name);
        if documented_plain(&name) {
            prop_assert_eq!(&tag, &collapse(&name));
            prop_assert!(!ends_hashed(&tag));
        } else {
            prop_assert!(ends_hashed(&tag), "{name:?} -> {tag:?}");
            prop_assert_ne!(&tag, &collapse(&name));
        }
        let distinct = distinct_branch_tag(&name);
        prop_assert!(distinct.starts_with("branch-") && ends_hashed(&distinct), "{distinct}");
    }

    /// Two names share a tag only by the documented overlap: both plain,
    /// and equal once each run of punctuation is one `-` (`my/feature` =
    /// `my#feature`). A hashed form never equals a plain one.
    #[test]
    fn distinct_names_get_distinct_tags(a in branch_name(), b in branch_name()) {
        let (ta, tb) = (sanitize_branch(&a), sanitize_branch(&b));
        let overlap = documented_plain(&a) && documented_plain(&b) && collapse(&a) == collapse(&b);
        prop_assert_eq!(ta == tb, a == b || overlap, "{:?} -> {:?}, {:?} -> {:?}", a, ta, b, tb);
        // The distinct form never meets another branch's tag of either kind.
        let (da, db) = (distinct_branch_tag(&a), distinct_branch_tag(&b));
        prop_assert_eq!(da == db, a == b);
        if a != b {
            prop_assert_ne!(&da, &tb);
            prop_assert_ne!(&db, &ta);
        }
        // Nor the plain tag of its own branch (the one another stage owns).
        if documented_plain(&a) {
            prop_assert_ne!(&da, &ta);
        }
    }

    /// The documented overlap really happens: swapping one run of
    /// punctuation for another keeps a plain name's tag.
    #[test]
    fn punctuation_runs_merge(
        left in "[a-z0-9]{1,8}",
        run_a in "[/#@ +~^:]{1,3}",
        run_b in "[/#@ +~^:]{1,3}",
        right in "[a-z0-9]{1,8}",
    ) {
        let a = format!("{left}{run_a}{right}");
        let b = format!("{left}{run_b}{right}");
        prop_assert_eq!(sanitize_branch(&a), format!("{left}-{right}"));
        prop_assert_eq!(sanitize_branch(&a), sanitize_branch(&b));
    }

    /// A branch literally named like another branch's hashed or distinct
    /// tag does not receive that tag.
    #[test]
    fn a_branch_named_like_a_hashed_tag_is_hashed_again(name in branch_name()) {
        let hashed = sanitize_branch(&name);
        if ends_hashed(&hashed) {
            prop_assert_ne!(sanitize_branch(&hashed), hashed.clone());
        }
        let distinct = distinct_branch_tag(&name);
        prop_assert_ne!(sanitize_branch(&distinct), distinct.clone());
        prop_assert_ne!(distinct_branch_tag(&distinct), distinct);
    }
}

// ---------------------------------------------------------------------------
// Version tags

/// Pre-release parts: OpenIM's rc and patch, semver's usual kinds, and the
/// look-alikes that must not count as rc or patch (`rc1`, `rc.1.2`, a
/// number too large for u64, bare `rc`/`patch`, numeric identifiers).
fn pre_release() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u64..5).prop_map(|n| format!("rc.{n}")),
        3 => (0u64..5).prop_map(|n| format!("patch.{n}")),
        1 => Just("rc.18446744073709551616".to_string()),
        1 => Just("patch.99999999999999999999".to_string()),
        1 => (0u64..3).prop_map(|n| format!("rc{n}")),
        1 => (0u64..3, 0u64..3).prop_map(|(a, b)| format!("rc.{a}.{b}")),
        1 => (0u64..3).prop_map(|n| format!("alpha.{n}")),
        1 => (0u64..3).prop_map(|n| format!("beta.{n}")),
        1 => Just("rc".to_string()),
        1 => Just("patch".to_string()),
        1 => Just("rc.x".to_string()),
        1 => Just("z".to_string()),
        1 => Just("0".to_string()),
        1 => Just("1.rc".to_string()),
        1 => Just("RC.1".to_string()),
        1 => Just("patcha.1".to_string()),
    ]
}

fn version_tag() -> impl Strategy<Value = String> {
    (
        0u64..3,
        0u64..3,
        0u64..3,
        prop::option::weighted(0.8, pre_release()),
    )
        .prop_map(|(x, y, z, pre)| match pre {
            Some(p) => format!("v{x}.{y}.{z}-{p}"),
            None => format!("v{x}.{y}.{z}"),
        })
}

fn kind_of(tag: &str) -> TagKind {
    classify(tag, "v").unwrap_or_else(|| panic!("{tag} is a version tag"))
}

fn semver_of(tag: &str) -> Version {
    Version::parse(tag.strip_prefix('v').unwrap()).unwrap()
}

proptest! {
    #![proptest_config(config(VERSION_CASES))]

    #[test]
    fn classify_reads_what_the_module_header_says(tag in version_tag()) {
        let v = semver_of(&tag);
        let base = Version::new(v.major, v.minor, v.patch);
        let pre = v.pre.as_str();
        let number = |kind: &str| {
            pre.strip_prefix(kind)
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok())
        };
        let expected = if pre.is_empty() {
            TagKind::Stable(base)
        } else if let Some(n) = number("rc.") {
            TagKind::Rc { version: base, n }
        } else if let Some(n) = number("patch.") {
            TagKind::Patch { version: base, n }
        } else {
            TagKind::OtherPre(v.clone())
        };
        prop_assert_eq!(kind_of(&tag), expected);
        // Build metadata, another prefix or none: not a version tag.
        let with_build = format!("{tag}+build.1");
        prop_assert_eq!(classify(&with_build, "v"), None);
        prop_assert_eq!(classify(&tag[1..], "v"), None);
        prop_assert_eq!(classify(&tag[1..], ""), Some(kind_of(&tag)));
    }

    /// A total order: antisymmetric, transitive, equal only when equal.
    #[test]
    fn compare_is_a_total_order(a in version_tag(), b in version_tag(), c in version_tag()) {
        let (ka, kb, kc) = (kind_of(&a), kind_of(&b), kind_of(&c));
        prop_assert_eq!(compare(&ka, &kb), compare(&kb, &ka).reverse());
        prop_assert_eq!(compare(&ka, &kb) == Ordering::Equal, ka == kb);
        if compare(&ka, &kb) != Ordering::Greater && compare(&kb, &kc) != Ordering::Greater {
            prop_assert_ne!(compare(&ka, &kc), Ordering::Greater, "{} <= {} <= {}", a, b, c);
        }
    }

    /// Semver's order for stable tags, rc tags and other pre-releases; a
    /// `-patch.N` tag sits after its X.Y.Z and before everything above it
    /// (X.Y.(Z+1)'s pre-releases included), patches ordered by N.
    #[test]
    fn compare_is_semver_with_patch_tags_after_their_release(a in version_tag(), b in version_tag()) {
        let (ka, kb) = (kind_of(&a), kind_of(&b));
        let expected = match (&ka, &kb) {
            (TagKind::Patch { version: va, n: na }, TagKind::Patch { version: vb, n: nb }) => {
                va.cmp(vb).then(na.cmp(nb))
            }
            (TagKind::Patch { version, .. }, _) => {
                if semver_of(&b) <= *version { Ordering::Greater } else { Ordering::Less }
            }
            (_, TagKind::Patch { version, .. }) => {
                if semver_of(&a) <= *version { Ordering::Less } else { Ordering::Greater }
            }
            _ => semver_of(&a).cmp(&semver_of(&b)),
        };
        prop_assert_eq!(compare(&ka, &kb), expected, "{} vs {}", a, b);
    }
}

/// docs/safety.md lists every property of the three suites with the cases
/// it runs; a property added, renamed or given other counts shows here.
#[test]
fn docs_safety_lists_every_property_with_its_cases() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/safety.md")).unwrap();
    let row = regex::Regex::new(r"(?m)^\| .* \| (\d+) \| `([a-z_]+)` \(([^)]+\.rs)\) \|$").unwrap();
    let listed: Vec<(u32, String, String)> = row
        .captures_iter(&doc)
        .map(|c| (c[1].parse().unwrap(), c[2].to_string(), c[3].to_string()))
        .collect();
    let mut found = Vec::new();
    for file in [
        "tests/it/properties.rs",
        "crates/yamledit/tests/properties.rs",
        "crates/dockerignore/tests/properties.rs",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let constant = |name: &str| -> u32 {
            let at = text
                .find(&format!("pub const {name}: u32 = "))
                .unwrap_or_else(|| panic!("{file}: {name}"));
            let rest = &text[at..];
            rest[rest.find("= ").unwrap() + 2..rest.find(';').unwrap()]
                .parse()
                .unwrap()
        };
        // Each `proptest! { #![proptest_config(config(X))] … }` block runs
        // its properties with X cases.
        let marker = concat!("\n    #![proptest_config(", "config(");
        for block in text.split(marker).skip(1) {
            let cases = constant(&block[..block.find(')').unwrap()]);
            let block = &block[..block.find("\n}\n").unwrap_or(block.len())];
            for f in block.split("fn ").skip(1) {
                let f = &f[..f.find('(').unwrap()];
                if !f.contains(' ') && !f.is_empty() {
                    found.push((cases, f.to_string(), file.to_string()));
                }
            }
        }
    }
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    found.sort();
    assert!(found.len() >= 17, "{found:?}");
    assert_eq!(listed_sorted, found, "docs/safety.md's property table");
}
