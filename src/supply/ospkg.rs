//! OS packages an image's package database lists: Debian's dpkg
//! (`var/lib/dpkg/status`, and distroless's `var/lib/dpkg/status.d/*`) and
//! Alpine's apk (`lib/apk/db/installed`), with the files each owns. Pure.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsPackage {
    /// `deb` or `apk` (the purl type).
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    /// The source package (dpkg `Source`, apk `o:`), when it differs.
    pub source: Option<String>,
    /// apk `L:` (an SPDX-like expression); dpkg has none in its database.
    pub license: Option<String>,
    /// Paths owned, without a leading `/`.
    pub files: BTreeSet<String>,
}

/// RFC 822-style paragraphs: `Key: value` lines, continuation lines
/// starting with a space, paragraphs separated by blank lines.
fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = cur.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// The installed packages of a dpkg status file (or a `status.d` entry).
/// `list_of` gives the content of `var/lib/dpkg/info/<name>.list` (or
/// `<name>:<arch>.list`) when the image has it.
pub fn dpkg(
    status: &str,
    list_of: &dyn Fn(&str, Option<&str>) -> Option<String>,
) -> Vec<OsPackage> {
    let mut out = Vec::new();
    for p in paragraphs(status) {
        let (Some(name), Some(version)) = (field(&p, "Package"), field(&p, "Version")) else {
            continue;
        };
        // status.d entries have no Status field; status ones must be installed.
        if let Some(status) = field(&p, "Status") {
            if !status.split_whitespace().any(|w| w == "installed") {
                continue;
            }
        }
        let arch = field(&p, "Architecture").map(str::to_string);
        let source = field(&p, "Source")
            .map(|s| s.split_whitespace().next().unwrap_or(s).to_string())
            .filter(|s| s != name);
        let files = list_of(name, arch.as_deref())
            .map(|l| {
                l.lines()
                    .map(|f| f.trim().trim_start_matches('/').to_string())
                    .filter(|f| !f.is_empty() && f != ".")
                    .collect()
            })
            .unwrap_or_default();
        out.push(OsPackage {
            kind: "deb",
            name: name.to_string(),
            version: version.to_string(),
            arch,
            source,
            license: None,
            files,
        });
    }
    out
}

/// The packages of an apk database (`lib/apk/db/installed`): one-letter
/// keys, `F:` a directory and the `R:` lines after it its files.
pub fn apk(installed: &str) -> Vec<OsPackage> {
    let mut out = Vec::new();
    let mut cur: Option<OsPackage> = None;
    let mut dir = String::new();
    let finish = |cur: &mut Option<OsPackage>, out: &mut Vec<OsPackage>| {
        if let Some(p) = cur.take() {
            if !p.name.is_empty() {
                out.push(p);
            }
        }
    };
    for line in installed.lines() {
        if line.trim().is_empty() {
            finish(&mut cur, &mut out);
            dir.clear();
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let p = cur.get_or_insert_with(|| OsPackage {
            kind: "apk",
            name: String::new(),
            version: String::new(),
            arch: None,
            source: None,
            license: None,
            files: BTreeSet::new(),
        });
        match k {
            "P" => p.name = v.to_string(),
            "V" => p.version = v.to_string(),
            "A" => p.arch = Some(v.to_string()),
            "L" => p.license = Some(v.to_string()).filter(|l| !l.is_empty()),
            "o" => p.source = Some(v.to_string()),
            "F" => dir = v.trim_matches('/').to_string(),
            "R" => {
                let path = if dir.is_empty() {
                    v.to_string()
                } else {
                    format!("{dir}/{v}")
                };
                p.files.insert(path);
            }
            _ => {}
        }
    }
    finish(&mut cur, &mut out);
    for p in &mut out {
        if p.source.as_deref() == Some(p.name.as_str()) {
            p.source = None;
        }
    }
    out
}

/// `ID` and `VERSION_ID` of an os-release file: `("debian", "12")`.
pub fn os_release(text: &str) -> (Option<String>, Option<String>) {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\'').to_string())
        })
    };
    (get("ID"), get("VERSION_ID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_with_lists() {
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n continued line\n\n\
                      Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                      Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n";
        let pkgs = dpkg(status, &|name, arch| match (name, arch) {
            ("libc6", Some("amd64")) => Some("/.\n/lib/x86_64-linux-gnu/libc.so.6\n/usr\n".into()),
            _ => None,
        });
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "libc6");
        assert_eq!(pkgs[0].source.as_deref(), Some("glibc"));
        assert!(pkgs[0].files.contains("lib/x86_64-linux-gnu/libc.so.6"));
        assert_eq!(pkgs[1].version, "2024a-0+deb12u1");
        assert!(pkgs[1].files.is_empty());
    }

    #[test]
    fn apk_database() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\n\
                  P:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\nF:bin\nR:busybox\nF:etc\nR:securetty\n";
        let pkgs = apk(db);
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "musl");
        assert_eq!(pkgs[0].source, None);
        assert_eq!(pkgs[0].license.as_deref(), Some("MIT"));
        assert!(pkgs[0].files.contains("lib/ld-musl-x86_64.so.1"));
        assert!(pkgs[1].files.contains("bin/busybox") && pkgs[1].files.contains("etc/securetty"));
    }

    #[test]
    fn os_release_ids() {
        assert_eq!(
            os_release("PRETTY_NAME=\"Debian GNU/Linux 12\"\nID=debian\nVERSION_ID=\"12\"\n"),
            (Some("debian".into()), Some("12".into()))
        );
    }
}
