//! The repository stands alone: no test, script, workflow or fixture refers
//! to a path outside it (a shared directory next to the checkout, the
//! directory tree of the machine it was written on, a sibling checkout).
//! A clone from GitHub has nothing next to it, so such a path breaks
//! `scripts/test` there.

use std::path::{Path, PathBuf};

/// What is scanned, relative to the repository root (directories recursively).
const SCANNED: &[&str] = &[
    "tests",
    "scripts",
    ".ci",
    ".github",
    "action.yml",
    "Cargo.toml",
    "docs/examples",
];

/// A reference that leaves the repository.
struct Needle {
    text: String,
    /// Only where a path starts: not preceded by a word character or by what
    /// ends a shell variable or substitution (`"$tmp/work/x"` and
    /// `${root}/work/x` are below some other directory).
    path_start: bool,
}

/// The needles, spelled in pieces so that this file does not hold them.
fn needles(repo: &Path) -> Vec<Needle> {
    let mut list = vec![
        Needle {
            text: ["..", "/shared"].concat(),
            path_start: false,
        },
        Needle {
            text: ["shared", "/fixtures"].concat(),
            path_start: false,
        },
        Needle {
            text: ["/", "work/"].concat(),
            path_start: true,
        },
    ];
    // Any absolute path to a sibling of the repository (or into it by its
    // absolute path): the parent directory's path, unless that is `/`.
    if let Some(parent) = repo.parent().filter(|p| p.parent().is_some()) {
        list.push(Needle {
            text: format!("{}/", parent.display()),
            path_start: true,
        });
    }
    list
}

fn starts_a_path(before: Option<char>) -> bool {
    before.is_none_or(|c| !(c.is_alphanumeric() || "_.-$})~".contains(c)))
}

fn files_under(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            files_under(&entry, out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

/// Every `file:line: needle: text` under `root`'s `scanned` entries.
fn scan(root: &Path, scanned: &[&str], needles: &[Needle]) -> Vec<String> {
    let mut files = Vec::new();
    for entry in scanned {
        let path = root.join(entry);
        assert!(path.exists(), "{} does not exist", path.display());
        files_under(&path, &mut files);
    }
    let mut found = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            for needle in needles {
                let hit = line.match_indices(&needle.text).any(|(at, _)| {
                    !needle.path_start || starts_a_path(line[..at].chars().next_back())
                });
                if hit {
                    found.push(format!("{rel}:{}: {}: {}", n + 1, needle.text, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn no_test_script_or_fixture_path_leaves_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = scan(root, SCANNED, &needles(root));
    assert!(
        found.is_empty(),
        "paths outside the repository (a clone has nothing next to it; put what \
         the tests need under tests/):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_planted_references_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("checkout");
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let parent = dir.path().display().to_string();
    let up_shared = ["..", "/shared"].concat();
    let fixtures = ["shared", "/fixtures"].concat();
    write(
        "tests/a.py",
        &format!("ok = 'tests/fixtures/github'\nFIX = '{up_shared}/x'\n"),
    );
    write(
        "tests/deep/b.rs",
        &format!("// fine\n// also fine\nlet p = \"{fixtures}/github\";\n"),
    );
    write(
        "scripts/run",
        &format!(
            "cd \"$tmp/work/dir\"\nsrc=${{root}}/work/x\ncat /{}x\n",
            "work/"
        ),
    );
    write(
        "Cargo.toml",
        &format!("[package]\npath = \"{parent}/other-checkout/Cargo.toml\"\n"),
    );
    write("docs/examples/ok.yml", "context: ../../..\n");
    let scanned = ["tests", "scripts", "Cargo.toml", "docs/examples"];
    let found = scan(&root, &scanned, &needles(&root));
    let places: Vec<&str> = found
        .iter()
        .map(|f| f.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        places,
        [
            "tests/a.py:2",
            "tests/deep/b.rs:3",
            "scripts/run:3",
            "Cargo.toml:2"
        ],
        "{found:#?}"
    );
}
