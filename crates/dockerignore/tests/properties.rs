//! Property tests of `.dockerignore` reading and matching against an
//! independent model of the rules the crate documents (moby's
//! `ignorefile.ReadAll` and `patternmatcher`): literal patterns, `*`, `?`,
//! `**` in each of moby's four matcher kinds, `!` re-includes, the last
//! matching pattern winning, parents excluding their children. Arbitrary
//! input never panics.

use dockerignore::DockerIgnore;
use proptest::prelude::*;

/// Cases per property (docs/safety.md lists them).
/// (Fewer where every case compiles several patterns: a debug build of the
/// regex compiler is slow.)
pub const MATCH_CASES: u32 = 1000;
pub const MODEL_CASES: u32 = 400;
pub const PARSE_CASES: u32 = 300;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ignore(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

// ---------------------------------------------------------------------------
// Generators: clean relative paths and clean patterns over a small alphabet,
// so that patterns and paths meet often.

fn segment(alphabet: &'static str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(alphabet)
        .unwrap()
        .prop_filter("a clean segment", |s| s != "." && s != "..")
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment("[ab.]{1,2}"), 1..5).prop_map(|s| s.join("/"))
}

fn literal() -> impl Strategy<Value = String> {
    prop::collection::vec(segment("[ab.]{1,2}"), 1..4).prop_map(|s| s.join("/"))
}

fn glob() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(segment("[ab.*?]{1,3}"), 1..4).prop_map(|s| s.join("/")),
        1 => literal().prop_map(|l| format!("{l}/**")),
        1 => literal().prop_map(|l| format!("**/{l}")),
        1 => literal().prop_map(|l| format!("**{l}")),
        1 => (literal(), literal()).prop_map(|(a, b)| format!("{a}/**/{b}")),
    ]
}

// ---------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Char(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    Question,
    /// `**/` (or `**` before more text): nothing, or anything ending in `/`.
    AnyDirs,
    /// `**` at the end: anything.
    Anything,
}

/// A pattern as moby compiles it: plain text is an exact match, plain text
/// then a final `**` a prefix test, a leading `**` then plain text a suffix
/// test (`**/x` also matching `x`), anything else the glob of `tokens`.
#[derive(Debug)]
enum Model {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Glob(Vec<Token>),
}

fn model(pattern: &str) -> Model {
    let special = |s: &str| s.contains(['*', '?']);
    if !special(pattern) {
        return Model::Exact(pattern.to_string());
    }
    if let Some(text) = pattern.strip_suffix("**") {
        if !special(text) {
            return Model::Prefix(text.to_string());
        }
    }
    if let Some(text) = pattern.strip_prefix("**") {
        if !special(text) {
            return Model::Suffix(text.to_string());
        }
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i == chars.len() {
                    Token::Anything
                } else {
                    Token::AnyDirs
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Question),
            c => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    Model::Glob(tokens)
}

/// Backtracking glob matcher (no regular expressions).
fn glob_match(tokens: &[Token], text: &[char]) -> bool {
    match tokens.split_first() {
        None => text.is_empty(),
        Some((Token::Char(c), rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
        Some((Token::Question, rest)) => {
            text.first().is_some_and(|&c| c != '/') && glob_match(rest, &text[1..])
        }
        Some((Token::Star, rest)) => (0..=text.len())
            .take_while(|&k| k == 0 || text[k - 1] != '/')
            .any(|k| glob_match(rest, &text[k..])),
        Some((Token::AnyDirs, rest)) => {
            glob_match(rest, text)
                || (1..=text.len())
                    .filter(|&k| text[k - 1] == '/')
                    .any(|k| glob_match(rest, &text[k..]))
        }
        Some((Token::Anything, _)) => true,
    }
}

fn model_matches(model: &Model, path: &str) -> bool {
    match model {
        Model::Exact(t) => path == t,
        Model::Prefix(t) => path.starts_with(t.as_str()),
        Model::Suffix(t) => {
            path.ends_with(t.as_str()) || t.strip_prefix('/').is_some_and(|rest| path == rest)
        }
        Model::Glob(tokens) => glob_match(tokens, &path.chars().collect::<Vec<_>>()),
    }
}

/// The path or one of its parent directories matches.
fn model_matches_or_parent(model: &Model, path: &str) -> bool {
    model_matches(model, path)
        || path
            .match_indices('/')
            .any(|(i, _)| model_matches(model, &path[..i]))
}

/// The last pattern that matches decides; `!` re-includes.
fn model_excluded(patterns: &[(bool, String)], path: &str) -> bool {
    patterns
        .iter()
        .rev()
        .find(|(_, p)| model_matches_or_parent(&model(p), path))
        .is_some_and(|(reinclude, _)| !reinclude)
}

proptest! {
    #![proptest_config(config(MATCH_CASES))]

    /// A literal pattern excludes exactly itself and everything below it.
    #[test]
    fn a_literal_pattern_matches_itself_and_its_children(lit in literal(), p in path()) {
        let di = ignore(&format!("{lit}\n"));
        let below = p.starts_with(&format!("{lit}/"));
        prop_assert_eq!(di.is_excluded(&p), p == lit || below, "{} vs {}", lit, p);
        prop_assert!(di.is_excluded(&lit));
        let (child, sibling) = (format!("{lit}/x"), format!("{lit}x"));
        prop_assert!(di.is_excluded(&child));
        prop_assert!(!di.is_excluded(&sibling));
        // Written with `./`, a leading `/`, a trailing `/` or doubled
        // slashes, it is the same pattern.
        for variant in [format!("./{lit}"), format!("/{lit}"), format!("{lit}/"), lit.replace('/', "//")] {
            prop_assert_eq!(ignore(&variant).is_excluded(&p), di.is_excluded(&p), "{}", variant);
        }
    }

    /// `!` re-includes what an earlier pattern excluded, and only that.
    #[test]
    fn an_exclusion_re_includes(dir in literal(), sub in literal(), p in path()) {
        let di = ignore(&format!("{dir}\n!{dir}/{sub}\n"));
        let under = |base: &str| p == base || p.starts_with(&format!("{base}/"));
        let inner = format!("{dir}/{sub}");
        prop_assert_eq!(di.is_excluded(&p), under(&dir) && !under(&inner), "{}", p);
        // Reversed, the later pattern wins again: everything under dir.
        let reversed = ignore(&format!("!{dir}/{sub}\n{dir}\n"));
        prop_assert_eq!(reversed.is_excluded(&p), under(&dir));
        prop_assert!(di.may_reinclude_under(&dir));
    }
}

proptest! {
    #![proptest_config(config(MODEL_CASES))]

    /// Wildcards in every matcher kind agree with the model, with several
    /// patterns and re-includes.
    #[test]
    fn matching_agrees_with_the_model(
        patterns in prop::collection::vec((prop::bool::weighted(0.3), glob()), 1..4),
        paths in prop::collection::vec(path(), 1..6),
    ) {
        let text: String = patterns
            .iter()
            .map(|(re, p)| format!("{}{p}\n", if *re { "!" } else { "" }))
            .collect();
        let di = ignore(&text);
        for p in &paths {
            prop_assert_eq!(di.is_excluded(p), model_excluded(&patterns, p), "{:?} on {}", text, p);
        }
    }

    /// When a directory is excluded and `may_reinclude_under` says no, every
    /// path below it is excluded (a walker may skip it).
    #[test]
    fn skipping_an_excluded_directory_is_sound(
        patterns in prop::collection::vec((prop::bool::weighted(0.4), glob()), 1..4),
        dir in literal(),
        below in prop::collection::vec(path(), 1..6),
    ) {
        let text: String = patterns
            .iter()
            .map(|(re, p)| format!("{}{p}\n", if *re { "!" } else { "" }))
            .collect();
        let di = ignore(&text);
        if di.is_excluded(&dir) && !di.may_reinclude_under(&dir) {
            for b in &below {
                let p = format!("{dir}/{b}");
                prop_assert!(di.is_excluded(&p), "{:?}: {} excluded, {} not", text, dir, p);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(PARSE_CASES))]

    /// Any file text and any path: an answer, never a panic; a refusal
    /// names the line.
    #[test]
    fn arbitrary_input_never_panics(
        text in prop_oneof![
            "[ab/*?!\\[\\]\\\\^{}|()$+.#: \t\r\n-]{0,40}",
            any::<String>(),
        ],
        p in prop_oneof![path(), any::<String>()],
    ) {
        match DockerIgnore::parse(&text) {
            Ok(di) => {
                let _ = di.is_excluded(&p);
                let _ = di.may_reinclude_under(&p);
                // The context root is never excluded.
                prop_assert!(!di.is_excluded(""));
                prop_assert!(!di.is_excluded("."));
            }
            Err(e) => prop_assert!(e.starts_with(".dockerignore line "), "{}", e),
        }
    }

    /// Comments, blank lines, surrounding blanks, CRLF and a BOM change
    /// nothing.
    #[test]
    fn layout_does_not_change_the_patterns(
        patterns in prop::collection::vec((prop::bool::weighted(0.3), glob()), 1..4),
        paths in prop::collection::vec(path(), 1..6),
    ) {
        let plain: String = patterns
            .iter()
            .map(|(re, p)| format!("{}{p}\n", if *re { "!" } else { "" }))
            .collect();
        let decorated: String = std::iter::once("\u{feff}# a comment\r\n\r\n".to_string())
            .chain(patterns.iter().map(|(re, p)| {
                format!("  {}  {p} \t\r\n# c\r\n", if *re { "! " } else { "" })
            }))
            .collect();
        let (a, b) = (ignore(&plain), ignore(&decorated));
        for p in &paths {
            prop_assert_eq!(a.is_excluded(p), b.is_excluded(p), "{}", p);
        }
    }
}
