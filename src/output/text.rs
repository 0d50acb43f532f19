//! Words in messages: counts with the noun in the right number.

/// A size for people: `812 B`, `4.2 KiB`, `1.3 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1 file`, `2 files`, `0 registries`.
pub fn count(n: usize, singular: &str) -> String {
    format!("{n} {}", noun(n, singular))
}

/// The noun alone, singular for 1 and plural otherwise.
pub fn noun(n: usize, singular: &str) -> String {
    if n == 1 {
        return singular.to_string();
    }
    match singular.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{stem}ies"),
        _ if ["s", "x", "z", "ch", "sh"]
            .iter()
            .any(|e| singular.ends_with(e)) =>
        {
            format!("{singular}es")
        }
        _ => format!("{singular}s"),
    }
}

/// A serde message in the terms of the file it is about, without Rust type
/// names: `expected struct ImagesConfig` is `expected a mapping` (YAML) or
/// `expected an object` (JSON), `expected u32` a whole number. `container`
/// is `a mapping` or `an object`.
/// What to add to the YAML syntax errors people meet most: a tab where YAML
/// wants spaces, a backslash escape in double quotes. `line` is 1-based.
pub fn yaml_syntax_hint(message: &str, text: &str, line: Option<usize>) -> Option<&'static str> {
    if message.contains("unknown escape character") {
        return Some(
            "in double quotes a backslash starts an escape: write `\\\\` for one backslash, \
             or use single quotes",
        );
    }
    let line_text = line.and_then(|l| text.lines().nth(l.checked_sub(1)?));
    if line_text.is_some_and(|l| l.contains('\t'))
        && (message.contains("cannot start any token") || message.contains("tab"))
    {
        return Some("the line holds a tab: YAML indents with spaces only");
    }
    None
}

pub fn serde_message(msg: &str, container: &str) -> String {
    use regex::Regex;
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"\bstruct [A-Za-z_][A-Za-z0-9_]*", "{c}"),
            (r"\bexpected a map\b", "expected {c}"),
            (r"\binvalid type: map\b", "invalid type: {bare}"),
            (r"\benum [A-Za-z_][A-Za-z0-9_]*", "one word of a fixed list"),
            (
                r"\ba YAML tag starting with '!'",
                "one word of a fixed list",
            ),
            (r"\b[ui](8|16|32|64|128|size)\b", "a whole number"),
            (r"\bf(32|64)\b", "a number"),
            // An enum's "variant" is a word of the file's fixed list.
            (r"\bunknown variant\b", "unknown value"),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).expect("static regex"), to))
        .collect()
    });
    let bare = container.rsplit(' ').next().unwrap_or(container);
    let mut out = msg.to_string();
    for (re, to) in rules {
        let to = to.replace("{c}", container).replace("{bare}", bare);
        out = re.replace_all(&out, to.as_str()).into_owned();
    }
    out
}

/// The closing line of a deploy edit that changed nothing while its files
/// warned: what the warnings name was left as it is.
pub fn nothing_but_warnings(warnings: usize) -> String {
    format!(
        "nothing to change, but see the {} above: what {} was left as it is",
        count(warnings, "warning"),
        if warnings == 1 {
            "it names"
        } else {
            "they name"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(0, "file"), "0 files");
        assert_eq!(count(2, "service"), "2 services");
        assert_eq!(count(1, "registry"), "1 registry");
        assert_eq!(count(3, "registry"), "3 registries");
        assert_eq!(count(2, "key"), "2 keys");
        assert_eq!(count(3, "branch"), "3 branches");
        assert_eq!(count(2, "pass"), "2 passes");
    }

    /// Regression (corpus config/tab-indentation, compose/tab-indentation,
    /// config/regex-in-double-quotes): libyaml's words alone did not say
    /// what to change.
    #[test]
    fn yaml_syntax_errors_get_a_hint() {
        let tab = "images:\n\tregistries: []\n";
        assert_eq!(
            yaml_syntax_hint("found character that cannot start any token", tab, Some(2)),
            Some("the line holds a tab: YAML indents with spaces only")
        );
        assert_eq!(
            yaml_syntax_hint("found character that cannot start any token", tab, Some(1)),
            None
        );
        assert!(
            yaml_syntax_hint("found unknown escape character", "a: \"\\d\"", Some(1))
                .unwrap()
                .contains("single quotes")
        );
    }

    #[test]
    fn serde_messages_name_no_rust_types() {
        assert_eq!(
            serde_message(
                "images: invalid type: sequence, expected struct ImagesConfig",
                "a mapping"
            ),
            "images: invalid type: sequence, expected a mapping"
        );
        assert_eq!(
            serde_message(
                "images.labels: invalid type: sequence, expected a map",
                "a mapping"
            ),
            "images.labels: invalid type: sequence, expected a mapping"
        );
        assert_eq!(
            serde_message(
                "tags.nightly.keep: invalid value: integer `-1`, expected u32",
                "a mapping"
            ),
            "tags.nightly.keep: invalid value: integer `-1`, expected a whole number"
        );
        assert_eq!(
            serde_message(
                "deploy.mode: unknown variant `merge`, expected `pr` or `push`",
                "a mapping"
            ),
            "deploy.mode: unknown value `merge`, expected `pr` or `push`"
        );
        assert_eq!(
            serde_message("invalid type: map, expected struct LegFile", "an object"),
            "invalid type: object, expected an object"
        );
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(4300), "4.2 KiB");
        assert_eq!(bytes(1_395_864_371), "1.3 GiB");
    }
}
