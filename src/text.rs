//! Words in messages: counts with the noun in the right number.

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
        _ => format!("{singular}s"),
    }
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
    }
}
