//! Build contexts: which files a build sees (after `.dockerignore`), the
//! digest of a service's inputs, and the context as a streamed tar.

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
}

/// Scan `root`, honouring its `.dockerignore`. The Dockerfile and
/// `.dockerignore` are always sent, as docker does.
pub fn scan(root: &Path, dockerfile: &Path) -> Result<BuildContext> {
    let root = root
        .canonicalize()
        .with_context(|| format!("build context {} does not exist", root.display()))?;
    let dockerfile = dockerfile
        .canonicalize()
        .with_context(|| format!("Dockerfile {} does not exist", dockerfile.display()))?;
    let ignore_path = root.join(".dockerignore");
    let ignore = if ignore_path.is_file() {
        let text = std::fs::read_to_string(&ignore_path)
            .with_context(|| format!("reading {}", ignore_path.display()))?;
        DockerIgnore::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", ignore_path.display()))?
    } else {
        DockerIgnore::empty()
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
    /// SHA-256 over every entry (path, type, mode, content) and the
    /// Dockerfile, plus `extra` (build args, platform, target…): equal
    /// inputs give an equal digest on every machine.
    /// With `sources` (what the Dockerfile copies, see
    /// [`crate::build::dockerfile::context_sources`]), only entries under them count.
    pub fn inputs_digest(
        &self,
        extra: &[(String, String)],
        sources: Option<&[String]>,
    ) -> Result<String> {
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
        if let Some(src) = sources {
            field(&mut h, format!("sources:{}", src.join(",")).as_bytes());
        }
        for e in &self.entries {
            if sources.is_some_and(|src| !crate::build::dockerfile::is_under(&e.rel, src)) {
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
        let only_b = vec!["b".to_string()];
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
