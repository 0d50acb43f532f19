//! The SPDX 2.3 SBOM of one platform image, read from its layers: the Go
//! modules recorded in the Go binaries' build information, the OS packages
//! of a dpkg or apk database, and every other file by its digest.
//!
//! The layers are read in order as a container runtime stacks them (a later
//! layer's file replaces an earlier one's; `.wh.` whiteouts and opaque
//! directories remove lower files), so the SBOM lists what a container of
//! the image sees. Blocking (it reads and hashes every file).

use super::gobuild::{self, GoBuildInfo, GoModule};
use super::ospkg::{self, OsPackage};
use crate::oci::Platform;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// The media type of an SPDX JSON document.
pub const MEDIA_TYPE: &str = "application/spdx+json";

/// What the SBOM is about.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub service: &'a str,
    pub platform: &'a Platform,
    /// The platform manifest's digest.
    pub digest: &'a str,
    /// Repositories the image is pushed to (`ghcr.io/openimsdk/openim-api`).
    pub repositories: &'a [String],
    /// RFC 3339 (the commit time, so the same image gets the same SBOM).
    pub created: &'a str,
}

/// A made SBOM and what it counted.
#[derive(Debug, Clone)]
pub struct Sbom {
    pub json: Vec<u8>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub go_binaries: usize,
    pub go_modules: usize,
    pub os_packages: usize,
    pub files: usize,
}

/// One file as a container sees it.
#[derive(Debug, Clone)]
struct Entry {
    layer: usize,
    sha256: String,
    sha1: String,
    size: u64,
    go: Option<GoBuildInfo>,
}

/// Files whose content the package databases need.
fn keep_content(path: &str) -> bool {
    path == "var/lib/dpkg/status"
        || path.starts_with("var/lib/dpkg/status.d/")
        || (path.starts_with("var/lib/dpkg/info/") && path.ends_with(".list"))
        || path == "lib/apk/db/installed"
        || path == "etc/os-release"
        || path == "usr/lib/os-release"
}

/// Largest file read whole (a Go binary's build information, a package
/// database).
const WHOLE: u64 = 512 * 1024 * 1024;

#[derive(Default)]
struct Fs {
    files: BTreeMap<String, Entry>,
    content: BTreeMap<String, (usize, Vec<u8>)>,
}

impl Fs {
    fn remove_under(&mut self, dir: &str, below_layer: usize, self_too: bool) {
        let prefix = format!("{dir}/");
        let gone = |p: &str, layer: usize| {
            layer < below_layer
                && ((self_too && p == dir) || p.starts_with(&prefix) || dir.is_empty())
        };
        self.files.retain(|p, e| !gone(p, e.layer));
        self.content.retain(|p, (l, _)| !gone(p, *l));
    }

    fn read_layer(&mut self, index: usize, path: &Path) -> Result<()> {
        let mut file = std::fs::File::open(path)?;
        let mut head = [0u8; 4];
        let n = file.read(&mut head)?;
        drop(file);
        let file = std::fs::File::open(path)?;
        let reader: Box<dyn Read> = match &head[..n] {
            [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(file)),
            [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(file)?),
            [b, 0x2a, 0x4d, 0x18] if b & 0xf0 == 0x50 => {
                Box::new(zstd::stream::read::Decoder::new(file)?)
            }
            _ => Box::new(file),
        };
        let mut archive = tar::Archive::new(reader);
        // Hard links point to an earlier entry of the same layer.
        let mut links: Vec<(String, String)> = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let raw = entry.path()?.to_string_lossy().into_owned();
            let p = normalize(&raw);
            let (dir, base) = match p.rsplit_once('/') {
                Some((d, b)) => (d.to_string(), b.to_string()),
                None => (String::new(), p.clone()),
            };
            if base == ".wh..wh..opq" {
                self.remove_under(&dir, index, false);
                continue;
            }
            if let Some(name) = base.strip_prefix(".wh.") {
                let target = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                self.remove_under(&target, index, true);
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_hard_link() {
                if let Some(target) = entry.link_name()? {
                    links.push((p, normalize(&target.to_string_lossy())));
                }
                continue;
            }
            if !kind.is_file() {
                // A directory or symlink replaces a file of a lower layer.
                if self.files.get(&p).is_some_and(|e| e.layer < index) {
                    self.files.remove(&p);
                }
                continue;
            }
            let size = entry.header().size().unwrap_or(0);
            let mut sha256 = Sha256::new();
            let mut sha1 = Sha1::new();
            let mut whole: Option<Vec<u8>> = None;
            let mut buf = vec![0u8; 64 * 1024];
            let mut first = true;
            loop {
                let n = entry.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                if first {
                    first = false;
                    if size <= WHOLE && (gobuild::is_elf(chunk) || keep_content(&p)) {
                        whole = Some(Vec::with_capacity(size as usize));
                    }
                }
                sha256.update(chunk);
                sha1.update(chunk);
                if let Some(w) = whole.as_mut() {
                    w.extend_from_slice(chunk);
                }
            }
            let go = whole
                .as_deref()
                .filter(|w| gobuild::is_elf(w))
                .and_then(gobuild::read);
            if keep_content(&p) {
                self.content
                    .insert(p.clone(), (index, whole.unwrap_or_default()));
            }
            self.files.insert(
                p,
                Entry {
                    layer: index,
                    sha256: crate::oci::hex(&sha256.finalize()),
                    sha1: crate::oci::hex(&sha1.finalize()),
                    size,
                    go,
                },
            );
        }
        for (path, target) in links {
            if let Some(e) = self.files.get(&target).cloned() {
                self.files.insert(path.clone(), Entry { layer: index, ..e });
            }
            if let Some((_, c)) = self.content.get(&target).cloned() {
                self.content.insert(path, (index, c));
            }
        }
        Ok(())
    }

    fn text(&self, path: &str) -> Option<String> {
        self.content
            .get(path)
            .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
    }

    fn packages(&self) -> Vec<OsPackage> {
        let mut out = Vec::new();
        let list_of = |name: &str, arch: Option<&str>| {
            arch.and_then(|a| self.text(&format!("var/lib/dpkg/info/{name}:{a}.list")))
                .or_else(|| self.text(&format!("var/lib/dpkg/info/{name}.list")))
        };
        if let Some(status) = self.text("var/lib/dpkg/status") {
            out.extend(ospkg::dpkg(&status, &list_of));
        }
        for (path, (_, c)) in &self.content {
            if path.starts_with("var/lib/dpkg/status.d/") && !path.ends_with(".md5sums") {
                out.extend(ospkg::dpkg(&String::from_utf8_lossy(c), &list_of));
            }
        }
        if let Some(db) = self.text("lib/apk/db/installed") {
            out.extend(ospkg::apk(&db));
        }
        out
    }
}

fn normalize(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// Read `layers` (blobs as pushed: gzip, zstd or plain tar, bottom first)
/// and make the SBOM of `subject`.
pub fn from_layers(layers: &[&Path], subject: &Subject) -> Result<Sbom> {
    let mut fs = Fs::default();
    for (i, l) in layers.iter().enumerate() {
        fs.read_layer(i, l)
            .with_context(|| format!("reading layer {} of {}", i + 1, subject.service))?;
    }
    Ok(document(&fs, subject))
}

/// An SPDX identifier from free text: `SPDXRef-` and `[A-Za-z0-9.-]`.
fn spdx_id(kind: &str, n: usize, text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    let clean: String = clean.chars().take(60).collect();
    format!("SPDXRef-{kind}-{n}-{clean}")
        .trim_end_matches('-')
        .to_string()
}

/// A purl's name or version part: percent-encode what is not safe.
fn purl_part(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn purl_path(path: &str) -> String {
    path.split('/').map(purl_part).collect::<Vec<_>>().join("/")
}

fn purl_ref(locator: String) -> Value {
    json!({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": locator})
}

/// Go's architecture names to apk's and dpkg's are the package's own; the
/// image's own names are Go's (`amd64`).
fn document(fs: &Fs, s: &Subject) -> Sbom {
    let hex = s.digest.strip_prefix("sha256:").unwrap_or(s.digest);
    let mut packages: Vec<Value> = Vec::new();
    let mut relationships: Vec<Value> = Vec::new();
    let mut counts = Counts::default();
    let image_id = "SPDXRef-Image".to_string();
    let mut qualifiers = format!("arch={}", purl_part(&s.platform.architecture));
    if let Some(v) = &s.platform.variant {
        qualifiers.push_str(&format!("&variant={}", purl_part(v)));
    }
    let image_name = s
        .repositories
        .first()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or(s.service);
    let mut image_refs = Vec::new();
    for repo in s.repositories {
        image_refs.push(purl_ref(format!(
            "pkg:oci/{}@sha256%3A{hex}?{qualifiers}&repository_url={}",
            purl_part(image_name),
            purl_part(repo)
        )));
    }
    if image_refs.is_empty() {
        image_refs.push(purl_ref(format!(
            "pkg:oci/{}@sha256%3A{hex}?{qualifiers}",
            purl_part(image_name)
        )));
    }
    packages.push(json!({
        "SPDXID": image_id,
        "name": s.service,
        "versionInfo": s.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": format!("the {} image of {}", s.platform, s.service),
        "externalRefs": image_refs,
    }));
    relationships.push(json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}));

    // OS packages, and the files they own.
    let (distro, distro_version) = fs
        .text("etc/os-release")
        .or_else(|| fs.text("usr/lib/os-release"))
        .map(|t| ospkg::os_release(&t))
        .unwrap_or((None, None));
    let mut owned: BTreeSet<&str> = BTreeSet::new();
    let os = fs.packages();
    for (n, p) in os.iter().enumerate() {
        let id = spdx_id(if p.kind == "deb" { "Deb" } else { "Apk" }, n + 1, &p.name);
        let namespace = distro
            .clone()
            .unwrap_or_else(|| if p.kind == "deb" { "debian" } else { "alpine" }.to_string());
        let mut q = Vec::new();
        if let Some(a) = &p.arch {
            q.push(format!("arch={}", purl_part(a)));
        }
        if let (Some(d), Some(v)) = (&distro, &distro_version) {
            q.push(format!("distro={}", purl_part(&format!("{d}-{v}"))));
        }
        let purl = format!(
            "pkg:{}/{}/{}@{}{}",
            p.kind,
            purl_part(&namespace),
            purl_part(&p.name),
            purl_part(&p.version),
            if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            }
        );
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [purl_ref(purl)],
        });
        if let Some(src) = &p.source {
            pkg["sourceInfo"] = json!(format!("built from the {} source package {src}", p.kind));
        }
        if let Some(l) = &p.license {
            pkg["licenseComments"] = json!(format!("the package database says: {l}"));
        }
        packages.push(pkg);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
        owned.extend(p.files.iter().map(String::as_str));
    }
    counts.os_packages = os.len();

    // Go binaries and their modules (one package per module and version).
    let mut modules: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut module_package = |m: &GoModule, packages: &mut Vec<Value>| -> String {
        let used = m.replaced_by.as_deref().unwrap_or(m);
        let key = (used.path.clone(), used.version.clone());
        if let Some(id) = modules.get(&key) {
            return id.clone();
        }
        let id = spdx_id("Go", modules.len() + 1, &used.path);
        let mut pkg = json!({
            "SPDXID": id,
            "name": used.path,
            "versionInfo": used.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [purl_ref(format!("pkg:golang/{}@{}", purl_path(&used.path), purl_part(&used.version)))],
        });
        let mut notes = Vec::new();
        if let Some(sum) = &used.sum {
            notes.push(format!("go.sum {sum}"));
        }
        if m.replaced_by.is_some() {
            notes.push(format!("replaces {} {}", m.path, m.version));
        }
        if !notes.is_empty() {
            pkg["comment"] = json!(notes.join("; "));
        }
        packages.push(pkg);
        modules.insert(key, id.clone());
        id
    };
    let mut file_ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut files: Vec<Value> = Vec::new();
    for (path, e) in &fs.files {
        if owned.contains(path.as_str()) {
            continue;
        }
        let id = spdx_id(
            "File",
            files.len() + 1,
            path.rsplit('/').next().unwrap_or(path),
        );
        let mut file = json!({
            "SPDXID": id,
            "fileName": format!("/{path}"),
            "checksums": [
                {"algorithm": "SHA1", "checksumValue": e.sha1},
                {"algorithm": "SHA256", "checksumValue": e.sha256},
            ],
            "licenseConcluded": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        });
        if e.go.is_some() {
            file["fileTypes"] = json!(["BINARY"]);
            file["comment"] = json!(format!("a Go binary, {} bytes", e.size));
        }
        files.push(file);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
        file_ids.insert(path, id);
    }
    counts.files = files.len();
    let mut binaries = 0;
    for (path, e) in &fs.files {
        let Some(go) = &e.go else { continue };
        binaries += 1;
        let main_path = go
            .main
            .as_ref()
            .map(|m| m.path.clone())
            .or_else(|| go.path.clone())
            .unwrap_or_else(|| path.clone());
        let main_version = go
            .main
            .as_ref()
            .map(|m| m.version.clone())
            .unwrap_or_else(|| "(devel)".into());
        let id = spdx_id(
            "GoBinary",
            binaries,
            path.rsplit('/').next().unwrap_or(path),
        );
        let mut pkg = json!({
            "SPDXID": id,
            "name": main_path,
            "versionInfo": main_version,
            "packageFileName": format!("/{path}"),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "APPLICATION",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": format!(
                "built with {}{}",
                go.go_version,
                go.path.as_ref().map(|p| format!(" from package {p}")).unwrap_or_default()
            ),
            "externalRefs": [purl_ref(format!("pkg:golang/{}@{}", purl_path(&main_path), purl_part(&main_version)))],
        });
        if let Some(rev) = go.settings.iter().find(|(k, _)| k == "vcs.revision") {
            pkg["sourceInfo"] = json!(format!("vcs.revision {}", rev.1));
        }
        packages.push(pkg);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
        if let Some(file_id) = file_ids.get(path.as_str()) {
            relationships.push(json!({"spdxElementId": id, "relationshipType": "CONTAINS", "relatedSpdxElement": file_id}));
        }
        let stdlib = GoModule {
            path: "stdlib".into(),
            version: go
                .go_version
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string(),
            sum: None,
            replaced_by: None,
        };
        for m in std::iter::once(&stdlib).chain(go.deps.iter()) {
            let dep = module_package(m, &mut packages);
            relationships.push(json!({"spdxElementId": id, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": dep}));
        }
    }
    counts.go_binaries = binaries;
    counts.go_modules = modules.keys().filter(|(p, _)| p != "stdlib").count();

    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", s.service, s.platform),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/openim-release/{}/{}/{hex}",
            purl_part(s.service),
            s.platform.slug()
        ),
        "creationInfo": {
            "created": utc_z(s.created),
            "creators": [format!("Tool: openim-release-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    Sbom {
        json: serde_json::to_vec(&doc).expect("JSON values serialize"),
        counts,
    }
}

/// SPDX wants `YYYY-MM-DDThh:mm:ssZ`.
fn utc_z(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A gzipped layer with these files (`path`, content); a content of
    /// `None` is a directory, `Some(b"->target")` a hard link.
    pub fn layer(dir: &Path, name: &str, files: &[(&str, Option<&[u8]>)]) -> std::path::PathBuf {
        let path = dir.join(name);
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (p, content) in files {
            let mut h = tar::Header::new_gnu();
            match content {
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, p, std::io::empty()).unwrap();
                }
                Some(c) if c.starts_with(b"->") => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, p, std::str::from_utf8(&c[2..]).unwrap())
                        .unwrap();
                }
                Some(c) => {
                    h.set_size(c.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, p, *c).unwrap();
                }
            }
        }
        b.into_inner().unwrap().finish().unwrap();
        path
    }

    fn subject<'a>(p: &'a Platform, repos: &'a [String]) -> Subject<'a> {
        Subject {
            service: "openim-api",
            platform: p,
            digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            repositories: repos,
            created: "2026-11-25T12:00:00Z",
        }
    }

    const MODINFO: &str = "path\tgithub.com/openimsdk/open-im-server/v3/cmd/openim-api\nmod\tgithub.com/openimsdk/open-im-server/v3\t(devel)\t\ndep\tgithub.com/gin-gonic/gin\tv1.9.1\th1:x=\ndep\tgo.uber.org/zap\tv1.24.0\th1:y=\n";

    #[test]
    fn go_modules_dpkg_packages_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let go = gobuild::fake_go_binary("go1.22.5", MODINFO, true);
        let base = layer(
            dir.path(),
            "base.tar.gz",
            &[
                ("etc", None),
                ("etc/os-release", Some(b"ID=debian\nVERSION_ID=\"12\"\n")),
                ("var/lib/dpkg/status", Some(b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a\n")),
                ("var/lib/dpkg/info/libc6:amd64.list", Some(b"/.\n/lib/libc.so.6\n")),
                ("lib/libc.so.6", Some(b"\x7fELF not go")),
                ("etc/removed.conf", Some(b"gone later")),
                ("opt/old/a", Some(b"a")),
            ],
        );
        let app = layer(
            dir.path(),
            "app.tar.gz",
            &[
                ("./openim/bin/openim-api", Some(&go)),
                (
                    "openim/bin/openim-api-link",
                    Some(b"->openim/bin/openim-api"),
                ),
                ("openim/config/openim.yaml", Some(b"api:\n  port: 10002\n")),
                ("etc/.wh.removed.conf", Some(b"")),
                ("opt/old/.wh..wh..opq", Some(b"")),
                ("opt/old/b", Some(b"b")),
            ],
        );
        let p = Platform::parse("linux/amd64").unwrap();
        let repos = vec!["ghcr.io/openimsdk/openim-api".to_string()];
        let sbom = from_layers(&[&base, &app], &subject(&p, &repos)).unwrap();
        let doc: Value = serde_json::from_slice(&sbom.json).unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["creationInfo"]["created"], "2026-11-25T12:00:00Z");
        let names: Vec<&str> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for want in [
            "openim-api",
            "libc6",
            "tzdata",
            "github.com/openimsdk/open-im-server/v3",
            "github.com/gin-gonic/gin",
            "go.uber.org/zap",
            "stdlib",
        ] {
            assert!(names.contains(&want), "{want} missing: {names:?}");
        }
        let purls: Vec<&str> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["externalRefs"].as_array().unwrap())
            .map(|r| r["referenceLocator"].as_str().unwrap())
            .collect();
        assert!(
            purls.contains(&"pkg:golang/github.com/gin-gonic/gin@v1.9.1"),
            "{purls:?}"
        );
        assert!(
            purls.contains(&"pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"),
            "{purls:?}"
        );
        let files: Vec<&str> = doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fileName"].as_str().unwrap())
            .collect();
        // Owned by libc6: not listed; whited out: gone; opaque dir: only b.
        assert!(!files.contains(&"/lib/libc.so.6"), "{files:?}");
        assert!(!files.contains(&"/etc/removed.conf"), "{files:?}");
        assert!(!files.contains(&"/opt/old/a"), "{files:?}");
        assert!(files.contains(&"/opt/old/b"), "{files:?}");
        assert!(files.contains(&"/openim/config/openim.yaml"), "{files:?}");
        assert!(files.contains(&"/openim/bin/openim-api-link"), "{files:?}");
        let yaml = doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["fileName"] == "/openim/config/openim.yaml")
            .unwrap();
        assert_eq!(
            yaml["checksums"][1]["checksumValue"],
            crate::oci::sha256_digest(b"api:\n  port: 10002\n").trim_start_matches("sha256:")
        );
        // Both names of the hard-linked binary are Go binaries.
        assert_eq!(sbom.counts.go_binaries, 2);
        assert_eq!(sbom.counts.go_modules, 2);
        assert_eq!(sbom.counts.os_packages, 2);
        // Every identifier is unique and well formed; every relationship
        // names identifiers of the document.
        let mut ids = BTreeSet::new();
        for e in doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .chain(doc["files"].as_array().unwrap())
        {
            let id = e["SPDXID"].as_str().unwrap();
            assert!(
                id.starts_with("SPDXRef-")
                    && id[8..]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "{id}"
            );
            assert!(ids.insert(id.to_string()), "{id} twice");
        }
        for r in doc["relationships"].as_array().unwrap() {
            for k in ["spdxElementId", "relatedSpdxElement"] {
                let id = r[k].as_str().unwrap();
                assert!(id == "SPDXRef-DOCUMENT" || ids.contains(id), "{r}");
            }
        }
        // The same layers give the same document.
        let again = from_layers(&[&base, &app], &subject(&p, &repos)).unwrap();
        assert_eq!(again.json, sbom.json);
    }

    #[test]
    fn apk_packages() {
        let dir = tempfile::tempdir().unwrap();
        let l = layer(
            dir.path(),
            "alpine.tar.gz",
            &[
                ("etc/os-release", Some(b"ID=alpine\nVERSION_ID=3.20.0\n")),
                (
                    "lib/apk/db/installed",
                    Some(b"P:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\nF:lib\nR:ld-musl-x86_64.so.1\n\n"),
                ),
                ("lib/ld-musl-x86_64.so.1", Some(b"x")),
                ("app/run.sh", Some(b"#!/bin/sh\n")),
            ],
        );
        let p = Platform::parse("linux/amd64").unwrap();
        let sbom = from_layers(&[&l], &subject(&p, &[])).unwrap();
        let text = String::from_utf8(sbom.json).unwrap();
        assert!(
            text.contains("pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.0"),
            "{text}"
        );
        assert!(!text.contains("\"/lib/ld-musl-x86_64.so.1\""), "{text}");
        assert!(text.contains("\"/app/run.sh\""), "{text}");
    }
}
