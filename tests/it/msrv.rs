//! `rust-version` in Cargo.toml is true: the oldest compiler that builds the
//! locked dependency graph (the highest `rust-version` among the packages
//! resolved for this platform), stated the same in every crate of the
//! workspace. Our own code is held to it by clippy's `incompatible_msrv`.

use std::path::Path;
use std::process::Command;

fn cargo_json(args: &[&str]) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(args)
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo prints JSON")
}

fn parse(v: &str) -> (u64, u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn rust_version_is_what_the_locked_dependencies_need() {
    let host = String::from_utf8(
        Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("running rustc -vV")
            .stdout,
    )
    .unwrap()
    .lines()
    .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
    .expect("rustc -vV names the host");
    let meta = cargo_json(&[
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--offline",
        "--filter-platform",
        &host,
    ]);
    let resolved: std::collections::HashSet<&str> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let packages = meta["packages"].as_array().unwrap();
    let (needed, by) = packages
        .iter()
        .filter(|p| !p["source"].is_null())
        .filter(|p| resolved.contains(p["id"].as_str().unwrap_or_default()))
        .filter_map(|p| {
            let v = p["rust_version"].as_str()?;
            Some((parse(v), format!("{} {}", p["name"], p["version"])))
        })
        .max()
        .expect("some dependency states a rust-version");
    for own in packages.iter().filter(|p| p["source"].is_null()) {
        let declared = own["rust_version"].as_str().unwrap_or("(none)");
        assert_eq!(
            parse(declared),
            needed,
            "{} declares rust-version {declared}, but the locked dependencies need \
             {}.{}.{} ({by}): set rust-version to it in every Cargo.toml",
            own["name"],
            needed.0,
            needed.1,
            needed.2,
        );
    }
}
