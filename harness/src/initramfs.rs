//! A `cpio -H newc` initramfs written in-process: the guest binary as /init,
//! the plan, and the device nodes the kernel needs before devtmpfs is mounted.

use std::io::{self, Write};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// One archive member.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Dir {
        path: String,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    CharDev {
        path: String,
        major: u32,
        minor: u32,
    },
}

/// Builds the archive in memory (a few MiB at most).
#[derive(Debug, Default)]
pub struct Initramfs {
    nodes: Vec<Node>,
}

impl Initramfs {
    /// The standard kgrade layout around `init` and the plan.
    pub fn for_guest(init: Vec<u8>, plan_path: &str, plan: &str) -> Initramfs {
        let mut fs = Initramfs::default();
        for dir in ["dev", "proc", "sys", "tmp", "kgrade"] {
            fs.add(Node::Dir { path: dir.into() });
        }
        // The kernel opens /dev/console for init's stdio before anything mounts.
        fs.add(Node::CharDev {
            path: "dev/console".into(),
            major: 5,
            minor: 1,
        });
        fs.add(Node::CharDev {
            path: "dev/null".into(),
            major: 1,
            minor: 3,
        });
        fs.add(Node::File {
            path: "init".into(),
            mode: 0o755,
            data: init,
        });
        fs.add(Node::File {
            path: plan_path.trim_start_matches('/').into(),
            mode: 0o644,
            data: plan.as_bytes().to_vec(),
        });
        fs
    }

    pub fn add(&mut self, node: Node) {
        self.nodes.push(node);
    }

    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut w = Writer { out, offset: 0 };
        for (i, node) in self.nodes.iter().enumerate() {
            let ino = i as u32 + 1;
            match node {
                Node::Dir { path } => w.entry(ino, path, S_IFDIR | 0o755, 2, (0, 0), &[])?,
                Node::File { path, mode, data } => {
                    w.entry(ino, path, S_IFREG | mode, 1, (0, 0), data)?
                }
                Node::CharDev { path, major, minor } => {
                    w.entry(ino, path, S_IFCHR | 0o600, 1, (*major, *minor), &[])?
                }
            }
        }
        w.entry(0, "TRAILER!!!", 0, 1, (0, 0), &[])
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut v);
        v
    }
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
    offset: usize,
}

impl<W: Write> Writer<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len();
        Ok(())
    }

    fn pad4(&mut self) -> io::Result<()> {
        let pad = (4 - self.offset % 4) % 4;
        self.put(&[0u8; 3][..pad])
    }

    fn entry(
        &mut self,
        ino: u32,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, so the same inputs give the same bytes
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad4()?;
        self.put(data)?;
        self.pad4()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal newc reader, to check the writer against the format.
    fn read(bytes: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0;
        let field = |b: &[u8], i: usize| {
            u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                .unwrap()
        };
        loop {
            let h = &bytes[off..off + 110];
            assert_eq!(&h[..6], b"070701");
            let mode = field(h, 1);
            let size = field(h, 6) as usize;
            let rdev = field(h, 9) << 8 | field(h, 10);
            let namesize = field(h, 11) as usize;
            let name = std::str::from_utf8(&bytes[off + 110..off + 110 + namesize - 1])
                .unwrap()
                .to_string();
            off = (off + 110 + namesize).div_ceil(4) * 4;
            let data = bytes[off..off + size].to_vec();
            off = (off + size).div_ceil(4) * 4;
            if name == "TRAILER!!!" {
                assert_eq!(off, bytes.len());
                return out;
            }
            out.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn guest_layout_round_trips() {
        let fs = Initramfs::for_guest(b"\x7fELF-binary".to_vec(), "/kgrade/plan.json", "{\"a\":1}");
        let bytes = fs.to_bytes();
        assert_eq!(bytes.len() % 4, 0);
        let entries = read(&bytes);
        let find = |n: &str| {
            entries
                .iter()
                .find(|e| e.0 == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(find("init").1, S_IFREG | 0o755);
        assert_eq!(find("init").3, b"\x7fELF-binary");
        assert_eq!(find("kgrade/plan.json").3, b"{\"a\":1}");
        assert_eq!(find("dev/console").1 & 0o170000, S_IFCHR);
        assert_eq!(find("dev/console").2, 5 << 8 | 1);
        assert_eq!(find("proc").1 & 0o170000, S_IFDIR);
    }

    #[test]
    fn output_is_deterministic() {
        let a = Initramfs::for_guest(vec![1, 2, 3], "/kgrade/plan.json", "x").to_bytes();
        let b = Initramfs::for_guest(vec![1, 2, 3], "/kgrade/plan.json", "x").to_bytes();
        assert_eq!(a, b);
    }

    #[test]
    fn names_of_every_length_stay_aligned() {
        let mut fs = Initramfs::default();
        for n in 1..9 {
            fs.add(Node::File {
                path: "f".repeat(n),
                mode: 0o644,
                data: vec![7; n],
            });
        }
        let entries = read(&fs.to_bytes());
        assert_eq!(entries.len(), 8);
        assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.3 == vec![7; i + 1]));
    }
}
