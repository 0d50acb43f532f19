//! The build information Go links into every binary (what `go version -m`
//! prints): the Go version, the main module and every dependency module
//! with its version and checksum. Read from ELF files. Pure.
//!
//! The linker writes a 32-byte header starting with `\xff Go buildinf:` at
//! a 16-byte aligned address, in the `.go.buildinfo` section (or, for old
//! linkers, near the start of the first writable segment): byte 14 is the
//! pointer size, byte 15 flags (bit 0: big endian, bit 1: the strings
//! follow the header inline, Go 1.18+). Inline, two strings follow, each a
//! uvarint length and its bytes: the Go version and the module information.
//! Before Go 1.18, two pointers at offsets 16 and 16 + pointer size point to
//! Go string headers (data pointer, length) in the binary's memory image.
//! The module information is framed by 16 sentinel bytes at each end.

/// What a Go binary records about its build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// `go1.22.5`.
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: Option<String>,
    /// The main module (`mod` line); its version is `(devel)` for a build
    /// from a checkout.
    pub main: Option<GoModule>,
    /// Every dependency module (`dep` lines), replacements applied.
    pub deps: Vec<GoModule>,
    /// `build` settings: `GOOS=linux`, `vcs.revision=…`, `-ldflags=…`.
    pub settings: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoModule {
    pub path: String,
    pub version: String,
    /// `h1:…` (the go.sum checksum), when recorded.
    pub sum: Option<String>,
    /// `=> path version` when the module was replaced.
    pub replaced_by: Option<Box<GoModule>>,
}

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER: usize = 32;
const ALIGN: usize = 16;

/// Whether `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// The build information of an ELF Go binary; `None` for anything else (not
/// ELF, not Go, or build information that does not parse).
pub fn read(bytes: &[u8]) -> Option<GoBuildInfo> {
    let elf = Elf::parse(bytes)?;
    let (start, len) = elf.data_start()?;
    let window = elf.read(start, len.min(64 * 1024))?;
    let at = find_header(window)?;
    let header = &window[at..];
    let ptr_size = header[14] as usize;
    let flags = header[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let (v, rest) = uvarint_string(&header[HEADER..])?;
        let (m, _) = uvarint_string(rest)?;
        (v.to_vec(), m.to_vec())
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let big = flags & 1 != 0;
        let ptr = |b: &[u8]| read_uint(b, ptr_size, big);
        let string_at = |addr: u64| -> Option<Vec<u8>> {
            let hdr = elf.read(addr, 2 * ptr_size as u64)?;
            let data = ptr(&hdr[..ptr_size])?;
            let len = ptr(&hdr[ptr_size..])?;
            if len > 1 << 24 {
                return None;
            }
            Some(elf.read(data, len)?.to_vec())
        };
        let v = string_at(ptr(header.get(16..16 + ptr_size)?)?)?;
        let m = string_at(ptr(header.get(16 + ptr_size..16 + 2 * ptr_size)?)?)?;
        (v, m)
    };
    let version = String::from_utf8(version).ok()?;
    if version.is_empty() {
        return None;
    }
    // Strip the sentinels (16 bytes each end) framing the module information.
    let framed = modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n';
    let modinfo = if framed {
        String::from_utf8_lossy(&modinfo[16..modinfo.len() - 16]).into_owned()
    } else {
        String::new()
    };
    let mut info = parse_modinfo(&modinfo);
    info.go_version = version;
    Some(info)
}

/// The first header at an aligned offset of `data`.
fn find_header(data: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let i = from + find(&data[from..], MAGIC)?;
        if i % ALIGN == 0 && data.len() - i >= HEADER {
            return Some(i);
        }
        from = (i + ALIGN - 1) & !(ALIGN - 1);
        if from <= i {
            from = i + 1;
        }
        if from >= data.len() {
            return None;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn uvarint_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut n: u64 = 0;
    let mut shift = 0;
    for (i, b) in data.iter().enumerate() {
        if shift > 63 {
            return None;
        }
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(n).ok()?)?;
            return Some((data.get(start..end)?, &data[end..]));
        }
        shift += 7;
    }
    None
}

fn read_uint(b: &[u8], size: usize, big: bool) -> Option<u64> {
    let b = b.get(..size)?;
    let mut v: u64 = 0;
    if big {
        for byte in b {
            v = (v << 8) | u64::from(*byte);
        }
    } else {
        for byte in b.iter().rev() {
            v = (v << 8) | u64::from(*byte);
        }
    }
    Some(v)
}

/// The `go version -m` text: `path`, `mod`, `dep`, `=>` and `build` lines,
/// tab-separated.
pub fn parse_modinfo(text: &str) -> GoBuildInfo {
    let mut info = GoBuildInfo {
        go_version: String::new(),
        path: None,
        main: None,
        deps: Vec::new(),
        settings: Vec::new(),
    };
    let module = |fields: &[&str]| -> Option<GoModule> {
        Some(GoModule {
            path: fields.first()?.to_string(),
            version: fields.get(1).unwrap_or(&"").to_string(),
            sum: fields
                .get(2)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string()),
            replaced_by: None,
        })
    };
    let mut last_dep = false;
    for line in text.lines() {
        let mut fields = line.split('\t');
        let kind = fields.next().unwrap_or("");
        let rest: Vec<&str> = fields.collect();
        match kind {
            "path" => info.path = rest.first().map(|s| s.to_string()),
            "mod" => info.main = module(&rest),
            "dep" => {
                if let Some(m) = module(&rest) {
                    info.deps.push(m);
                    last_dep = true;
                    continue;
                }
            }
            "=>" => {
                let target = if last_dep {
                    info.deps.last_mut()
                } else {
                    info.main.as_mut()
                };
                if let (Some(t), Some(r)) = (target, module(&rest)) {
                    t.replaced_by = Some(Box::new(r));
                }
            }
            "build" => {
                if let Some(setting) = rest.first() {
                    let (k, v) = setting.split_once('=').unwrap_or((setting, ""));
                    info.settings.push((k.to_string(), v.to_string()));
                }
            }
            _ => {}
        }
        last_dep = false;
    }
    info
}

/// Just enough of ELF to map virtual addresses to the file: sections (for
/// `.go.buildinfo`) and loadable segments.
struct Elf<'a> {
    bytes: &'a [u8],
    sections: Vec<(String, u64, u64, u64)>, // name, addr, offset, size
    /// (vaddr, offset, filesz, memsz, flags)
    segments: Vec<(u64, u64, u64, u64, u32)>,
}

impl<'a> Elf<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Elf<'a>> {
        if !is_elf(bytes) || bytes.len() < 52 {
            return None;
        }
        let class64 = match bytes[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let big = match bytes[5] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let u = |off: usize, size: usize| read_uint(bytes.get(off..)?, size, big);
        let (phoff, shoff) = if class64 {
            (u(0x20, 8)?, u(0x28, 8)?)
        } else {
            (u(0x1c, 4)?, u(0x20, 4)?)
        };
        let base = if class64 { 0x36 } else { 0x2a };
        let phentsize = u(base, 2)? as usize;
        let phnum = u(base + 2, 2)? as usize;
        let shentsize = u(base + 4, 2)? as usize;
        let shnum = u(base + 6, 2)? as usize;
        let shstrndx = u(base + 8, 2)? as usize;
        let mut segments = Vec::new();
        for i in 0..phnum.min(1024) {
            let p = usize::try_from(phoff).ok()? + i * phentsize;
            let ptype = u(p, 4)?;
            if ptype != 1 {
                continue; // PT_LOAD only
            }
            let seg = if class64 {
                (
                    u(p + 0x10, 8)?,
                    u(p + 0x08, 8)?,
                    u(p + 0x20, 8)?,
                    u(p + 0x28, 8)?,
                    u(p + 0x04, 4)? as u32,
                )
            } else {
                (
                    u(p + 0x08, 4)?,
                    u(p + 0x04, 4)?,
                    u(p + 0x10, 4)?,
                    u(p + 0x14, 4)?,
                    u(p + 0x18, 4)? as u32,
                )
            };
            segments.push(seg);
        }
        let mut raw = Vec::new();
        for i in 0..shnum.min(4096) {
            let s = usize::try_from(shoff).ok()? + i * shentsize;
            let Some(name) = u(s, 4) else { break };
            let (addr, offset, size) = if class64 {
                (u(s + 0x10, 8)?, u(s + 0x18, 8)?, u(s + 0x20, 8)?)
            } else {
                (u(s + 0x0c, 4)?, u(s + 0x10, 4)?, u(s + 0x14, 4)?)
            };
            raw.push((name, addr, offset, size));
        }
        let names = raw.get(shstrndx).and_then(|&(_, _, off, size)| {
            bytes.get(usize::try_from(off).ok()?..usize::try_from(off + size).ok()?)
        });
        let sections = raw
            .iter()
            .map(|&(name, addr, offset, size)| {
                let n = names
                    .and_then(|t| {
                        let from = usize::try_from(name).ok()?;
                        let tail = t.get(from..)?;
                        let end = tail.iter().position(|b| *b == 0)?;
                        std::str::from_utf8(&tail[..end]).ok()
                    })
                    .unwrap_or("")
                    .to_string();
                (n, addr, offset, size)
            })
            .collect();
        Some(Elf {
            bytes,
            sections,
            segments,
        })
    }

    /// Where the build information is looked for: `.go.buildinfo`, else the
    /// first writable, non-executable loadable segment.
    fn data_start(&self) -> Option<(u64, u64)> {
        if let Some((_, addr, _, size)) = self.sections.iter().find(|s| s.0 == ".go.buildinfo") {
            return Some((*addr, *size));
        }
        const PF_X: u32 = 1;
        const PF_W: u32 = 2;
        self.segments
            .iter()
            .find(|s| s.4 & (PF_X | PF_W) == PF_W)
            .map(|s| (s.0, s.3))
    }

    /// `len` bytes of the memory image at `addr` (only what the file holds).
    fn read(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let seg = self
            .segments
            .iter()
            .find(|s| addr >= s.0 && addr < s.0.saturating_add(s.2))?;
        let off = seg.1 + (addr - seg.0);
        let avail = seg.2 - (addr - seg.0);
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len.min(avail)).ok()?)?;
        self.bytes.get(start..end.min(self.bytes.len()))
    }
}

/// A minimal ELF executable whose `.go.buildinfo` section holds `version`
/// and `modinfo` (framed as the Go linker frames them): for tests here and
/// in tests/it. `inline` writes the Go 1.18+ layout, else the pointer one.
#[doc(hidden)]
pub fn fake_go_binary(version: &str, modinfo: &str, inline: bool) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    // The sentinels the Go linker frames the module information with.
    let start = [
        0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18,
        0xe6,
    ];
    let end = [
        0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8,
        0xf2,
    ];
    let mut modbytes = start.to_vec();
    modbytes.extend_from_slice(modinfo.as_bytes());
    modbytes.extend_from_slice(&end);
    // Layout: ELF header (64) | program header (56) | padding to 0x100 |
    // buildinfo blob | strings | section name table | section headers (3).
    let mut blob = Vec::new();
    blob.extend_from_slice(MAGIC);
    blob.push(8);
    let data_at: u64 = 0x100;
    if inline {
        blob.push(2);
        blob.resize(HEADER, 0);
        for s in [version.as_bytes(), &modbytes] {
            let mut n = s.len() as u64;
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    blob.push(b);
                    break;
                }
                blob.push(b | 0x80);
            }
            blob.extend_from_slice(s);
        }
    } else {
        blob.push(0);
        // Two pointers to string headers placed right after the header,
        // then the string data.
        let hdr1 = BASE + data_at + HEADER as u64;
        let hdr2 = hdr1 + 16;
        let v_at = hdr2 + 16;
        let m_at = v_at + version.len() as u64;
        blob.extend_from_slice(&hdr1.to_le_bytes());
        blob.extend_from_slice(&hdr2.to_le_bytes());
        blob.resize(HEADER, 0);
        blob.extend_from_slice(&v_at.to_le_bytes());
        blob.extend_from_slice(&(version.len() as u64).to_le_bytes());
        blob.extend_from_slice(&m_at.to_le_bytes());
        blob.extend_from_slice(&(modbytes.len() as u64).to_le_bytes());
        blob.extend_from_slice(version.as_bytes());
        blob.extend_from_slice(&modbytes);
    }
    let mut out = vec![0u8; data_at as usize];
    out.extend_from_slice(&blob);
    let names_at = out.len() as u64;
    out.extend_from_slice(b"\0.go.buildinfo\0.shstrtab\0");
    let names_len = out.len() as u64 - names_at;
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    let file_len = shoff + 3 * 64;
    // Section headers: null, .go.buildinfo, .shstrtab.
    let mut sh = vec![0u8; 64];
    let mut section = |name: u32, typ: u32, addr: u64, off: u64, size: u64| {
        let mut s = vec![0u8; 64];
        s[0..4].copy_from_slice(&name.to_le_bytes());
        s[4..8].copy_from_slice(&typ.to_le_bytes());
        s[0x10..0x18].copy_from_slice(&addr.to_le_bytes());
        s[0x18..0x20].copy_from_slice(&off.to_le_bytes());
        s[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        sh.extend_from_slice(&s);
    };
    section(1, 1, BASE + data_at, data_at, blob.len() as u64);
    section(15, 3, 0, names_at, names_len);
    out.extend_from_slice(&sh);
    debug_assert_eq!(out.len() as u64, file_len);
    // ELF header.
    let mut h = vec![0u8; 64];
    h[0..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little endian
    h[6] = 1;
    h[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    h[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    h[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // phoff
    h[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    h[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    h[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    h[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    h[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    h[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
    out[..64].copy_from_slice(&h);
    // One PT_LOAD segment, read-write, mapping the whole file at BASE.
    let mut p = vec![0u8; 56];
    p[0..4].copy_from_slice(&1u32.to_le_bytes());
    p[4..8].copy_from_slice(&6u32.to_le_bytes()); // PF_R | PF_W
    p[0x08..0x10].copy_from_slice(&0u64.to_le_bytes());
    p[0x10..0x18].copy_from_slice(&BASE.to_le_bytes());
    p[0x18..0x20].copy_from_slice(&BASE.to_le_bytes());
    p[0x20..0x28].copy_from_slice(&file_len.to_le_bytes());
    p[0x28..0x30].copy_from_slice(&file_len.to_le_bytes());
    out[64..120].copy_from_slice(&p);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODINFO: &str = "path\tgithub.com/openimsdk/open-im-server/v3/cmd/openim-api\n\
        mod\tgithub.com/openimsdk/open-im-server/v3\t(devel)\t\n\
        dep\tgithub.com/gin-gonic/gin\tv1.9.1\th1:4idEAncQnU5cB7BeOkPtxjfCSye0AAm1R0RVIqJ+Jmg=\n\
        dep\tgithub.com/openimsdk/protocol\tv0.0.69\th1:abc=\n\
        =>\tgithub.com/openimsdk/protocol\tv0.0.70\th1:def=\n\
        dep\tgo.mongodb.org/mongo-driver\tv1.12.0\t\n\
        build\t-buildmode=exe\n\
        build\tGOARCH=amd64\n\
        build\tvcs.revision=0123456789abcdef\n";

    #[test]
    fn reads_both_layouts_of_a_go_binary() {
        for inline in [true, false] {
            let bin = fake_go_binary("go1.22.5", MODINFO, inline);
            let info = read(&bin).unwrap_or_else(|| panic!("inline={inline}: not read"));
            assert_eq!(info.go_version, "go1.22.5");
            assert_eq!(
                info.path.as_deref(),
                Some("github.com/openimsdk/open-im-server/v3/cmd/openim-api")
            );
            let main = info.main.unwrap();
            assert_eq!(main.path, "github.com/openimsdk/open-im-server/v3");
            assert_eq!(main.version, "(devel)");
            assert_eq!(info.deps.len(), 3);
            assert_eq!(info.deps[0].path, "github.com/gin-gonic/gin");
            assert_eq!(info.deps[0].version, "v1.9.1");
            assert!(info.deps[0].sum.as_deref().unwrap().starts_with("h1:"));
            let replaced = info.deps[1].replaced_by.as_ref().unwrap();
            assert_eq!(replaced.version, "v0.0.70");
            assert_eq!(info.deps[2].sum, None);
            assert!(info
                .settings
                .contains(&("vcs.revision".into(), "0123456789abcdef".into())));
        }
    }

    #[test]
    fn other_files_are_not_go_binaries() {
        assert_eq!(read(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(read(b"\x7fELF"), None);
        // An ELF file with no build information.
        let mut bin = fake_go_binary("go1.22.5", MODINFO, true);
        let at = find(&bin, MAGIC).unwrap();
        bin[at] = b'x';
        assert_eq!(read(&bin), None);
        // Truncated in the middle of the strings.
        let bin = fake_go_binary("go1.22.5", MODINFO, true);
        assert!(read(&bin[..0x100 + 40]).is_none());
    }

    #[test]
    fn a_binary_without_modules_has_only_its_version() {
        let bin = fake_go_binary("go1.19.8", "", true);
        let info = read(&bin).unwrap();
        assert_eq!(info.go_version, "go1.19.8");
        assert!(info.deps.is_empty() && info.main.is_none());
    }
}
