//! Build contexts: which files a build sees (after `.dockerignore`), the
//! digest of a service's inputs, and the context as a streamed tar.

use crate::build::dockerfile::{is_under, under, Source};
use crate::dockerignore::DockerIgnore;
use crate::oci::hex;
use anyhow::{Context as _, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Name the Dockerfile gets inside the tar when it lives outside the context.
pub const OUTSIDE_DOCKERFILE: &str = ".openim-release.Dockerfile";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File { size: u64 },
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the context root, `/`-separated.
    pub rel: String,
    pub kind: Kind,
    pub mode: u32,
}

/// A scanned build context.
#[derive(Debug, Clone)]
pub struct BuildContext {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// The Dockerfile's path inside the tar.
    pub dockerfile_in_tar: String,
    /// A Dockerfile outside the context, added to the tar under [`OUTSIDE_DOCKERFILE`].
    pub outside_dockerfile: Option<PathBuf>,
    /// The ignore file that was applied (see [`ignore_file`]).
    pub ignore_file: Option<PathBuf>,
}

/// The ignore file BuildKit applies: `<Dockerfile>.dockerignore` beside the
/// Dockerfile when there is one (the root `.dockerignore` is then not
/// read), else `.dockerignore` at the context root, else none.
pub fn ignore_file(root: &Path, dockerfile: &Path) -> Option<PathBuf> {
    let mut beside = dockerfile.as_os_str().to_os_string();
    beside.push(".dockerignore");
    let beside = PathBuf::from(beside);
    if beside.is_file() {
        return Some(beside);
    }
    let root = root.join(".dockerignore");
    root.is_file().then_some(root)
}

/// Scan `root`, honouring its ignore file (see [`ignore_file`]). The
/// Dockerfile and `.dockerignore` are always sent, as docker does.
pub fn scan(root: &Path, dockerfile: &Path) -> Result<BuildContext> {
    let root = root
        .canonicalize()
        .with_context(|| format!("build context {} does not exist", root.display()))?;
    let dockerfile = dockerfile
        .canonicalize()
        .with_context(|| format!("Dockerfile {} does not exist", dockerfile.display()))?;
    let ignore_path = ignore_file(&root, &dockerfile);
    let ignore = match &ignore_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            DockerIgnore::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => DockerIgnore::empty(),
    };
    let (dockerfile_in_tar, outside_dockerfile) = match dockerfile.strip_prefix(&root) {
        Ok(rel) => (to_slash(rel), None),
        Err(_) => (OUTSIDE_DOCKERFILE.to_string(), Some(dockerfile.clone())),
    };
    let always = [dockerfile_in_tar.clone(), ".dockerignore".to_string()];
    let mut entries = Vec::new();
    walk(&root, &root, &ignore, &always, &mut entries)?;
    Ok(BuildContext {
        root,
        entries,
        dockerfile_in_tar,
        outside_dockerfile,
        ignore_file: ignore_path,
    })
}

fn to_slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &DockerIgnore,
    always: &[String],
    out: &mut Vec<Entry>,
) -> Result<()> {
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading directory {}", dir.display()))?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let rel = to_slash(path.strip_prefix(root).unwrap_or(&path));
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let excluded = ignore.is_excluded(&rel) && !always.contains(&rel);
        let mode = mode_of(&meta);
        if meta.is_dir() {
            if excluded && !ignore.may_reinclude_under(&rel) {
                continue;
            }
            if !excluded {
                out.push(Entry {
                    rel: rel.clone(),
                    kind: Kind::Dir,
                    mode,
                });
            }
            walk(root, &path, ignore, always, out)?;
        } else if !excluded {
            let kind = if meta.file_type().is_symlink() {
                Kind::Symlink(
                    std::fs::read_link(&path)
                        .with_context(|| format!("reading link {}", path.display()))?,
                )
            } else if meta.is_file() {
                Kind::File { size: meta.len() }
            } else {
                continue; // sockets, fifos: docker skips them too
            };
            out.push(Entry { rel, kind, mode });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() {
        0o755
    } else {
        0o644
    }
}

impl BuildContext {
    /// SHA-256 over every entry (path, type, mode, content), the Dockerfile
    /// and the ignore file applied, plus `extra` (build args, platform,
    /// target…): equal inputs give an equal digest on every machine.
    /// With `sources` (what the Dockerfile reads, see
    /// [`crate::build::dockerfile::context_sources`]), only entries under them
    /// count, unless a symlink lies on the way to one (BuildKit follows it,
    /// so the whole context counts).
    pub fn inputs_digest(
        &self,
        extra: &[(String, String)],
        sources: Option<&[Source]>,
    ) -> Result<String> {
        let sources = sources.filter(|src| !self.symlink_on_the_way(src));
        let mut h = Sha256::new();
        let field = |h: &mut Sha256, s: &[u8]| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s);
        };
        for (k, v) in extra {
            field(&mut h, k.as_bytes());
            field(&mut h, v.as_bytes());
        }
        let dockerfile = self
            .outside_dockerfile
            .clone()
            .unwrap_or_else(|| self.root.join(&self.dockerfile_in_tar));
        field(&mut h, b"dockerfile");
        hash_file(&mut h, &dockerfile)?;
        if let Some(ignore) = &self.ignore_file {
            let name = ignore.file_name().unwrap_or_default().to_string_lossy();
            field(&mut h, format!("ignore:{name}").as_bytes());
            hash_file(&mut h, ignore)?;
        }
        if let Some(src) = sources {
            let list: Vec<String> = src
                .iter()
                .map(|s| format!("{}{}", s.path, if s.pattern { "/*" } else { "" }))
                .collect();
            field(&mut h, format!("sources:{}", list.join(",")).as_bytes());
        }
        for e in &self.entries {
            if sources.is_some_and(|src| !is_under(&e.rel, src)) {
                continue;
            }
            field(&mut h, e.rel.as_bytes());
            field(&mut h, format!("{:o}", e.mode & 0o111).as_bytes());
            match &e.kind {
                Kind::Dir => field(&mut h, b"dir"),
                Kind::Symlink(t) => {
                    field(&mut h, b"link");
                    field(&mut h, t.to_string_lossy().as_bytes());
                }
                Kind::File { .. } => {
                    field(&mut h, b"file");
                    hash_file(&mut h, &self.root.join(&e.rel))?;
                }
            }
        }
        Ok(format!("sha256:{}", hex(&h.finalize())))
    }

    /// The context with only what the build reads, when that is known
    /// (`sources`, as [`BuildContext::inputs_digest`] narrows it; no
    /// symlink on the way): the entries under the sources, the directories
    /// above them, the Dockerfile and the ignore files. The engine then
    /// receives and unpacks only those (the docker CLI's BuildKit session
    /// sends no more), not every service's binaries for each service.
    pub fn narrowed(&self, sources: Option<&[Source]>) -> BuildContext {
        let Some(src) = sources.filter(|src| !self.symlink_on_the_way(src)) else {
            return self.clone();
        };
        let keep = |rel: &str, kind: &Kind| -> bool {
            is_under(rel, src)
                || rel == self.dockerfile_in_tar
                || rel == ".dockerignore"
                || rel == format!("{}.dockerignore", self.dockerfile_in_tar)
                || (matches!(kind, Kind::Dir) && src.iter().any(|s| under(&s.path, rel)))
        };
        let mut narrowed = self.clone();
        narrowed.entries.retain(|e| keep(&e.rel, &e.kind));
        narrowed
    }

    /// Whether a symlink is a source, one of its parents, or (for a
    /// wildcard) below it: BuildKit follows those, out of the narrowed set.
    fn symlink_on_the_way(&self, sources: &[Source]) -> bool {
        self.entries.iter().any(|e| {
            matches!(e.kind, Kind::Symlink(_))
                && sources
                    .iter()
                    .any(|s| under(&s.path, &e.rel) || (s.pattern && under(&e.rel, &s.path)))
        })
    }

    /// Write the context as a tar to `w` (entries in scan order, owner
    /// 0:0, mtime fixed so layers are reproducible).
    pub fn write_tar(&self, w: impl Write) -> Result<()> {
        let mut tar = tar::Builder::new(w);
        tar.follow_symlinks(false);
        for e in &self.entries {
            let path = self.root.join(&e.rel);
            let mut header = tar::Header::new_gnu();
            header.set_mode(e.mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            match &e.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{}/", e.rel), std::io::empty())?;
                }
                Kind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    tar.append_link(&mut header, &e.rel, target)
                        .with_context(|| format!("adding link {} to the context", e.rel))?;
                }
                Kind::File { .. } => {
                    let file = std::fs::File::open(&path)
                        .with_context(|| format!("opening {}", path.display()))?;
                    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(size);
                    tar.append_data(&mut header, &e.rel, file.take(size))
                        .with_context(|| format!("adding {} to the context", e.rel))?;
                }
            }
        }
        if let Some(df) = &self.outside_dockerfile {
            let file =
                std::fs::File::open(df).with_context(|| format!("opening {}", df.display()))?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_size(size);
            tar.append_data(&mut header, OUTSIDE_DOCKERFILE, file.take(size))?;
        }
        tar.into_inner()?.flush()?;
        Ok(())
    }

    /// The number of files and their total size in bytes (what is sent to
    /// the engine, besides the tar's headers).
    pub fn size(&self) -> (usize, u64) {
        let files = self.entries.iter().filter_map(|e| match e.kind {
            Kind::File { size } => Some(size),
            _ => None,
        });
        files.fold((0, 0), |(n, total), size| (n + 1, total + size))
    }

    /// The tar as a stream of chunks, produced on a blocking thread with a
    /// small bounded buffer: never the whole context in memory.
    pub fn tar_stream(
        &self,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let ctx = self.clone();
        tokio::task::spawn_blocking(move || {
            let writer = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = ctx.write_tar(writer) {
                let _ = tx.blocking_send(Err(std::io::Error::other(format!("{e:#}"))));
            }
        });
        tokio_stream_from(rx)
    }
}

const CHUNK: usize = 256 * 1024;

fn hash_file(h: &mut Sha256, path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut content = Sha256::new();
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        content.update(&buf[..n]);
    }
    h.update(content.finalize());
    Ok(())
}

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the build stopped reading the context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn names(ctx: &BuildContext) -> Vec<String> {
        ctx.entries.iter().map(|e| e.rel.clone()).collect()
    }

    #[test]
    fn honours_dockerignore_but_keeps_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "Dockerfile", "FROM scratch\n");
        write(r, ".dockerignore", "Dockerfile\n*.md\n!KEEP.md\nlogs\n");
        write(r, "README.md", "x");
        write(r, "KEEP.md", "x");
        write(r, "logs/a.log", "x");
        write(r, "cmd/api/main.go", "x");
        let ctx = scan(r, &r.join("Dockerfile")).unwrap();
        assert_eq!(
            names(&ctx),
            [
                ".dockerignore",
                "Dockerfile",
                "KEEP.md",
                "cmd",
                "cmd/api",
                "cmd/api/main.go"
            ]
        );
        assert_eq!(ctx.dockerfile_in_tar, "Dockerfile");
    }

    #[test]
    fn the_engine_gets_only_what_the_dockerfile_reads() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let dockerfile = "FROM scratch\nARG CMD_PATH\nCOPY config/ /c/\nCOPY ${CMD_PATH}/ /b/\n";
        write(r, "build/Dockerfile", dockerfile);
        write(r, ".dockerignore", "*.log\n");
        write(r, "config/a.yaml", "x");
        write(r, "cmd/api/api", "x");
        write(r, "cmd/push/push", "x");
        write(r, "docs/readme.md", "x");
        let ctx = scan(r, &r.join("build/Dockerfile")).unwrap();
        let args =
            std::collections::BTreeMap::from([("CMD_PATH".to_string(), "cmd/api".to_string())]);
        let sources = crate::build::dockerfile::context_sources(dockerfile, &args);
        assert_eq!(
            names(&ctx.narrowed(sources.as_deref())),
            [
                ".dockerignore",
                "build/Dockerfile",
                "cmd",
                "cmd/api",
                "cmd/api/api",
                "config",
                "config/a.yaml"
            ]
        );
        // Not known: everything.
        assert_eq!(names(&ctx.narrowed(None)), names(&ctx));
    }

    #[test]
    fn digest_follows_content_not_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "Dockerfile", "FROM scratch\n");
        write(r, "a.txt", "one");
        let d1 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&[], None)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(r, "a.txt", "one");
        let d2 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&[], None)
            .unwrap();
        assert_eq!(d1, d2);
        let extra = [("arg:X".to_string(), "1".to_string())];
        let d3 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&extra, None)
            .unwrap();
        assert_ne!(d1, d3);
        write(r, "a.txt", "two");
        let d4 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&[], None)
            .unwrap();
        assert_ne!(d1, d4);
        // Narrowed to what the Dockerfile copies: other files do not count.
        write(r, "b/x.txt", "x");
        let only_b = vec![Source {
            path: "b".to_string(),
            pattern: false,
        }];
        let n1 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&[], Some(&only_b))
            .unwrap();
        write(r, "a.txt", "three");
        let n2 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&[], Some(&only_b))
            .unwrap();
        assert_eq!(n1, n2);
        write(r, "b/x.txt", "y");
        let n3 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&[], Some(&only_b))
            .unwrap();
        assert_ne!(n1, n3);
        write(r, "Dockerfile", "FROM scratch\nCOPY b /b\n");
        let n4 = scan(r, &r.join("Dockerfile"))
            .unwrap()
            .inputs_digest(&[], Some(&only_b))
            .unwrap();
        assert_ne!(n3, n4);
    }

    #[test]
    fn dockerfile_outside_the_context_is_added() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "build/Dockerfile", "FROM scratch\n");
        write(r, "src/a.txt", "a");
        let ctx = scan(&r.join("src"), &r.join("build/Dockerfile")).unwrap();
        assert_eq!(ctx.dockerfile_in_tar, OUTSIDE_DOCKERFILE);
        let mut bytes = Vec::new();
        ctx.write_tar(&mut bytes).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(paths, ["a.txt", OUTSIDE_DOCKERFILE]);
    }
}

/// The inputs digest as a property: for Dockerfiles covering the forms a
/// build reads the context through, changing any file the build reads
/// changes the digest, and changing one it does not read does not (unless
/// the reader answered "the whole context", which it must for the forms it
/// cannot follow).
#[cfg(test)]
mod property {
    use super::*;
    use crate::build::dockerfile::context_sources;
    use std::collections::BTreeMap;

    /// Every file of the context, and the Dockerfile-specific ignore file
    /// that some cases add.
    const FILES: &[&str] = &[
        "a b/x.txt",
        "src/main.go",
        "src/util/u.go",
        "cfg/app.yaml",
        "mnt/data.txt",
        "cache/c.txt",
        "other/o.txt",
        "docs/readme.md",
        "gl/one.txt",
        "gl/two.txt",
        "real/r.txt",
        ".dockerignore",
    ];

    enum Reads {
        /// Exactly these files (paths from [`FILES`]; the Dockerfile and an
        /// ignore file beside it are always read).
        Only(&'static [&'static str]),
        /// The reader must answer "the whole context".
        Whole,
    }

    struct Case {
        name: &'static str,
        dockerfile: &'static str,
        /// `Dockerfile.dockerignore`, when the case has one.
        own_ignore: Option<&'static str>,
        args: &'static [(&'static str, &'static str)],
        reads: Reads,
    }

    const CASES: &[Case] = &[
        Case {
            name: "JSON form with a space, flags before it",
            dockerfile: "FROM scratch\nCOPY [\"a b/x.txt\", \"/x\"]\nCOPY --chown=1:1 --chmod=644 --link [\"src/main.go\", \"/m\"]\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["a b/x.txt", "src/main.go"]),
        },
        Case {
            name: "quoted shell form",
            dockerfile: "FROM scratch\nCOPY \"cfg/app.yaml\" '/dst/'\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["cfg/app.yaml"]),
        },
        Case {
            name: "a global ARG is not in scope in a stage",
            dockerfile: "ARG DIR=other\nFROM scratch\nCOPY ${DIR:-cfg} /x\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["cfg/app.yaml"]),
        },
        Case {
            name: "a global ARG declared again in the stage",
            dockerfile: "ARG DIR=other\nFROM scratch\nARG DIR\nCOPY ${DIR} /x\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["other/o.txt"]),
        },
        Case {
            name: "a build arg over the default",
            dockerfile: "ARG DIR=other\nFROM scratch\nARG DIR\nCOPY ${DIR} /x\n",
            own_ignore: None,
            args: &[("DIR", "cache")],
            reads: Reads::Only(&["cache/c.txt"]),
        },
        Case {
            name: "a stage's ARG does not leak into the next",
            dockerfile: "FROM scratch AS a\nARG D=src/main.go\nCOPY $D /s\nFROM scratch\nCOPY ${D:-cfg} /c\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["src/main.go", "cfg/app.yaml"]),
        },
        Case {
            name: "ENV over ARG",
            dockerfile: "FROM scratch\nARG D=other\nENV D=cfg\nCOPY $D /x\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["cfg/app.yaml"]),
        },
        Case {
            name: "heredocs are inline text",
            dockerfile: "# syntax=docker/dockerfile:1\nFROM scratch\nCOPY <<EOF /etc/x\nsrc/main.go\nEOF\nRUN <<EOF\necho other\nEOF\nCOPY <<-EOT cfg /dst/\n\tcfg\n\tEOT\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["cfg/app.yaml"]),
        },
        Case {
            name: "bind mounts read the context, cache and other stages do not",
            dockerfile: "FROM alpine AS b\nRUN --mount=type=bind,source=mnt,target=/m \\\n    --mount=type=cache,target=/root/.cache \\\n    --mount=type=bind,from=other,source=/cache,target=/c \\\n    cp /m/data.txt /out\nFROM scratch\nCOPY --from=b /out /out\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["mnt/data.txt"]),
        },
        Case {
            name: "a bind mount of the whole context",
            dockerfile: "FROM alpine\nRUN --mount=type=bind,target=/src make -C /src\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Whole,
        },
        Case {
            name: "COPY --from a stage or an image",
            dockerfile: "FROM scratch AS b\nCOPY src/main.go /src/\nFROM scratch\nCOPY --from=b /src /s\nCOPY --from=alpine:3 /etc/os-release /x\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["src/main.go"]),
        },
        Case {
            name: "ONBUILD",
            dockerfile: "FROM scratch AS base\nONBUILD COPY other /o\nFROM base\nCOPY cfg /c\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Whole,
        },
        Case {
            name: "a wildcard",
            dockerfile: "FROM scratch\nCOPY gl/*.txt /g/\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Only(&["gl/one.txt", "gl/two.txt"]),
        },
        Case {
            name: "the Dockerfile's own ignore file, not the root one",
            dockerfile: "FROM scratch\nCOPY src /src\nCOPY docs /docs\n",
            own_ignore: Some("src/util\n"),
            args: &[],
            reads: Reads::Only(&["src/main.go", "docs/readme.md"]),
        },
        Case {
            name: "a symlink on the way to a source",
            dockerfile: "FROM scratch\nCOPY link/r.txt /r\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Whole,
        },
        Case {
            name: "COPY . .",
            dockerfile: "FROM scratch\nCOPY . /app\n",
            own_ignore: None,
            args: &[],
            reads: Reads::Whole,
        },
    ];

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn digest(root: &Path, args: &BTreeMap<String, String>) -> (String, bool) {
        let df = root.join("build/Dockerfile");
        let ctx = scan(root, &df).unwrap();
        let text = std::fs::read_to_string(&df).unwrap();
        let sources = context_sources(&text, args);
        let whole = sources.is_none() || ctx.symlink_on_the_way(sources.as_deref().unwrap());
        (ctx.inputs_digest(&[], sources.as_deref()).unwrap(), whole)
    }

    #[test]
    fn a_file_the_build_reads_changes_the_digest_and_no_other_does() {
        for case in CASES {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            for f in FILES {
                write(root, f, &format!("{f} v1\n"));
            }
            // The root ignore file excludes cfg/ and docs/: with the
            // Dockerfile's own ignore file, BuildKit does not read it.
            write(root, ".dockerignore", "docs\n*.tmp\n");
            #[cfg(unix)]
            std::os::unix::fs::symlink("real", root.join("link")).unwrap();
            write(root, "build/Dockerfile", case.dockerfile);
            if let Some(ignore) = case.own_ignore {
                write(root, "build/Dockerfile.dockerignore", ignore);
            }
            let args: BTreeMap<String, String> = case
                .args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let (before, whole) = digest(root, &args);
            let expect_whole = matches!(case.reads, Reads::Whole);
            assert_eq!(whole, expect_whole, "{}: whole context?", case.name);
            let mut files: Vec<&str> = FILES.to_vec();
            files.push("build/Dockerfile");
            if case.own_ignore.is_some() {
                files.push("build/Dockerfile.dockerignore");
            }
            for f in files {
                let ignored_by_root = case.own_ignore.is_none() && f.starts_with("docs/");
                let read = match &case.reads {
                    Reads::Whole => !ignored_by_root,
                    Reads::Only(reads) => {
                        reads.contains(&f)
                            || f == "build/Dockerfile"
                            || f == "build/Dockerfile.dockerignore"
                            || (f == ".dockerignore" && case.own_ignore.is_none())
                    }
                };
                let old = std::fs::read_to_string(root.join(f)).unwrap();
                std::fs::write(root.join(f), format!("{old}changed\n")).unwrap();
                let (after, _) = digest(root, &args);
                std::fs::write(root.join(f), old).unwrap();
                if read {
                    assert_ne!(after, before, "{}: changing {f} must rebuild", case.name);
                } else {
                    assert_eq!(after, before, "{}: changing {f} must not", case.name);
                }
            }
            assert_eq!(digest(root, &args).0, before, "{}", case.name);
        }
    }

    #[test]
    fn the_dockerfiles_own_ignore_file_decides_what_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "build/Dockerfile", "FROM scratch\nCOPY . /\n");
        write(root, ".dockerignore", "docs\n");
        write(root, "build/Dockerfile.dockerignore", "secret.txt\n");
        write(root, "docs/readme.md", "x");
        write(root, "secret.txt", "x");
        let ctx = scan(root, &root.join("build/Dockerfile")).unwrap();
        let names: Vec<&str> = ctx.entries.iter().map(|e| e.rel.as_str()).collect();
        assert!(names.contains(&"docs/readme.md"), "{names:?}");
        assert!(!names.contains(&"secret.txt"), "{names:?}");
        std::fs::remove_file(root.join("build/Dockerfile.dockerignore")).unwrap();
        let ctx = scan(root, &root.join("build/Dockerfile")).unwrap();
        let names: Vec<&str> = ctx.entries.iter().map(|e| e.rel.as_str()).collect();
        assert!(!names.contains(&"docs/readme.md"), "{names:?}");
        assert!(names.contains(&"secret.txt"), "{names:?}");
    }
    #[test]
    fn a_symlink_out_of_the_context_is_sent_as_a_link_never_its_target() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "do not send").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::write(r.join("Dockerfile"), "FROM scratch\nCOPY . /ctx/\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), r.join("leak")).unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("leakdir")).unwrap();
        let ctx = scan(r, &r.join("Dockerfile")).unwrap();
        let mut tar = Vec::new();
        ctx.write_tar(&mut tar).unwrap();
        assert!(
            !tar.windows(11).any(|w| w == b"do not send"),
            "a target's content is in the context"
        );
        let mut archive = tar::Archive::new(tar.as_slice());
        let kinds: Vec<(String, tar::EntryType)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        for name in ["leak", "leakdir"] {
            assert!(
                kinds.contains(&(name.to_string(), tar::EntryType::Symlink)),
                "{name}: {kinds:?}"
            );
        }
        assert!(
            !kinds.iter().any(|(n, _)| n.starts_with("leakdir/")),
            "{kinds:?}"
        );
        assert_eq!(ctx.size(), (1, 26), "the Dockerfile is the one file sent");
    }
}
