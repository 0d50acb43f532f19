//! Repositories written from the files under tests/fixtures/, shaped like
//! the real OpenIM repositories (see tests/fixtures/README.md).

use crate::common::*;
use std::path::{Path, PathBuf};

pub fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copy the fixture `name` into `dest`, `@REGISTRY@` replaced by `registry`.
pub fn copy(name: &str, dest: &Path, registry: &str) {
    copy_with(name, dest, &[("@REGISTRY@", registry)]);
}

/// Copy the fixture `name` (a directory, or one file) to `dest`, each
/// `(placeholder, value)` replaced.
pub fn copy_with(name: &str, dest: &Path, vars: &[(&str, &str)]) {
    fn fill(text: String, vars: &[(&str, &str)]) -> String {
        vars.iter().fold(text, |t, (k, v)| t.replace(k, v))
    }
    fn walk(from: &Path, to: &Path, vars: &[(&str, &str)]) {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.path().is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                walk(&e.path(), &target, vars);
            } else {
                let text = std::fs::read_to_string(e.path()).unwrap();
                std::fs::write(&target, fill(text, vars)).unwrap();
            }
        }
    }
    let from = dir(name);
    if from.is_file() {
        let text = std::fs::read_to_string(&from).unwrap();
        std::fs::write(dest, fill(text, vars)).unwrap();
        return;
    }
    assert!(from.is_dir(), "no fixture {}", from.display());
    walk(&from, dest, vars);
}

/// The text of fixture file `name`, each `(placeholder, value)` replaced.
pub fn text(name: &str, vars: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(dir(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    vars.iter().fold(text, |t, (k, v)| t.replace(k, v))
}

/// A repository with the fixture's files in one commit on `main`.
pub fn repo(name: &str, registry: &str) -> TestRepo {
    let repo = TestRepo::new();
    copy(name, repo.path(), registry);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", name]);
    repo
}
