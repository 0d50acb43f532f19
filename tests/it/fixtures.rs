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
    fn walk(from: &Path, to: &Path, registry: &str) {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.path().is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                walk(&e.path(), &target, registry);
            } else {
                let text = std::fs::read_to_string(e.path()).unwrap();
                std::fs::write(&target, text.replace("@REGISTRY@", registry)).unwrap();
            }
        }
    }
    let from = dir(name);
    assert!(from.is_dir(), "no fixture {}", from.display());
    walk(&from, dest, registry);
}

/// A repository with the fixture's files in one commit on `main`.
pub fn repo(name: &str, registry: &str) -> TestRepo {
    let repo = TestRepo::new();
    copy(name, repo.path(), registry);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", name]);
    repo
}
