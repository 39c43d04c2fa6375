//! The one writer of every output file (traces, checkpoints, JSON, charts,
//! reports): what a path may be, checked before any work starts, and a
//! write that leaves either the whole new file or the old one.
//!
//! - A new path, or an existing regular file, is written atomically: into
//!   a temporary file with a unique name in the target's folder (created
//!   exclusively, so no user's file is ever overwritten by it), flushed and
//!   synced, then renamed over the target. Any failure removes the
//!   temporary file; the target is untouched.
//! - A symlink is followed to its target; the link itself stays.
//! - A character device or a FIFO (`/dev/stdout`, a named pipe) is written
//!   directly: it cannot be replaced by a regular file, and it is never
//!   removed.
//! - A directory, a block device or a socket is refused.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A checked output path: where the bytes go and how.
#[derive(Clone, Debug)]
pub struct OutputPath {
    /// What the user named.
    given: PathBuf,
    /// The path after following symlinks (the file the rename replaces).
    target: PathBuf,
    /// Written in place (a character device or FIFO) rather than replaced.
    stream: bool,
}

/// Symlinks followed before giving up (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

fn error(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("cannot write {}: {what}", path.display()))
}

fn os_error(path: &Path, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
}

/// Follows `path`'s symlinks to the path they end at (which may not exist
/// yet), without requiring it to exist as `canonicalize` does.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).map_err(|e| os_error(path, &e))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(current);
            }
            Err(e) => return Err(os_error(path, &e)),
        }
    }
    Err(error(path, "too many levels of symbolic links"))
}

impl OutputPath {
    /// Checks that `path` can be written, before the work that produces
    /// its bytes: its folder exists and takes a new file, and it is not a
    /// directory, block device or socket.
    pub fn check(path: &Path) -> io::Result<OutputPath> {
        if path.as_os_str().is_empty() {
            return Err(io::Error::other("cannot write an empty path"));
        }
        if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
            return Err(error(path, "it names a directory (it ends in /)"));
        }
        let stream = |target: PathBuf| OutputPath {
            given: path.to_owned(),
            target,
            stream: true,
        };
        // Follows every link, the kernel's own (/dev/stdout, /proc/self/fd)
        // included.
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Err(error(path, "it is a directory")),
            Ok(m) if is_stream(&m.file_type()) => Ok(stream(path.to_owned())),
            Ok(m) if m.is_file() => {
                if is_descriptor_alias(path) {
                    // `/dev/stdout` redirected to a file: the bytes go to
                    // the descriptor's file, not over it by a rename.
                    return Ok(stream(path.to_owned()));
                }
                let target = std::fs::canonicalize(path).map_err(|e| os_error(path, &e))?;
                Self::probe_folder(path, &target)?;
                Ok(OutputPath {
                    given: path.to_owned(),
                    target,
                    stream: false,
                })
            }
            Ok(_) => Err(error(
                path,
                "not a regular file, character device or FIFO (a block device or socket is never written)",
            )),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                // New, or a symlink to a file yet to be made.
                let target = resolve(path)?;
                Self::probe_folder(path, &target)?;
                Ok(OutputPath {
                    given: path.to_owned(),
                    target,
                    stream: false,
                })
            }
            Err(e) => Err(os_error(path, &e)),
        }
    }

    /// The folder of `target` exists, is a folder, and a file can be
    /// created in it (made and removed at once).
    fn probe_folder(path: &Path, target: &Path) -> io::Result<()> {
        if target.file_name().is_none() {
            return Err(error(path, "not a file name"));
        }
        let dir = folder(target);
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(error(path, format!("{} is not a directory", dir.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(error(
                    path,
                    format!("the directory {} does not exist", dir.display()),
                ));
            }
            Err(e) => return Err(os_error(path, &e)),
        }
        let (file, tmp) = temporary(path, target)?;
        drop(file);
        let _ = std::fs::remove_file(&tmp);
        Ok(())
    }

    /// The path as the user gave it.
    pub fn path(&self) -> &Path {
        &self.given
    }

    /// Whether the bytes go straight into a character device or FIFO.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Writes what `fill` produces. A regular target is replaced atomically
    /// (unique temporary file, flushed, synced, renamed; removed on any
    /// failure); a stream is written in place.
    pub fn write_with(
        &self,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let path = &self.given;
        if self.stream {
            // A descriptor's regular file is rewritten from its start; a
            // device or FIFO is written as it is.
            let regular = std::fs::metadata(&self.target).is_ok_and(|m| m.is_file());
            let file = OpenOptions::new()
                .write(true)
                .truncate(regular)
                .open(&self.target)
                .map_err(|e| os_error(path, &e))?;
            let mut w = BufWriter::new(file);
            return fill(&mut w)
                .and_then(|()| w.flush())
                .map_err(|e| os_error(path, &e));
        }
        let (file, tmp) = temporary(path, &self.target)?;
        let result = (|| {
            // Keep the permissions of the file being replaced.
            if let Ok(m) = std::fs::metadata(&self.target)
                && m.is_file()
            {
                file.set_permissions(m.permissions())?;
            }
            let mut w = BufWriter::new(file);
            fill(&mut w)?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, &self.target)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(os_error(path, &e));
        }
        // The rename is durable once the folder's entry is.
        if let Ok(dir) = File::open(folder(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Writes `bytes` (see [`OutputPath::write_with`]).
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_with(|w| w.write_all(bytes))
    }
}

/// Checks `path` and writes `bytes` to it (see [`OutputPath`]).
pub fn write_output(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OutputPath::check(path)?.write(bytes)
}

/// A path that stands for an open descriptor (`/dev/stdout`, `/dev/fd/N`,
/// `/proc/self/fd/N`): written through the descriptor's file in place.
fn is_descriptor_alias(path: &Path) -> bool {
    ["/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/"]
        .iter()
        .any(|prefix| {
            path.as_os_str()
                .as_encoded_bytes()
                .starts_with(prefix.as_bytes())
        })
}

#[cfg(unix)]
fn is_stream(kind: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    kind.is_char_device() || kind.is_fifo()
}

#[cfg(not(unix))]
fn is_stream(_: &std::fs::FileType) -> bool {
    false
}

fn folder(target: &Path) -> &Path {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A new file with a unique name beside `target`, created exclusively.
fn temporary(path: &Path, target: &Path) -> io::Result<(File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .ok_or_else(|| error(path, "not a file name"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for _ in 0..100 {
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            ".{}-{:08x}-{}.tmp",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = folder(target).join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(os_error(path, &e)),
        }
    }
    Err(error(path, "no unused temporary file name beside it"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("scratchpad-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn new_and_regular_files_are_replaced_whole() {
        let dir = tmpdir("regular");
        let path = dir.join("out.json");
        write_output(&path, b"first").unwrap();
        write_output(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert!(leftovers(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_user_file_named_like_the_old_temporary_is_kept() {
        let dir = tmpdir("user-tmp");
        let path = dir.join("run.trace.json");
        std::fs::write(dir.join("run.trace.json.tmp"), b"mine").unwrap();
        write_output(&path, b"trace").unwrap();
        assert_eq!(
            std::fs::read(dir.join("run.trace.json.tmp")).unwrap(),
            b"mine"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary() {
        let dir = tmpdir("failed");
        let path = dir.join("out.json");
        std::fs::write(&path, b"old").unwrap();
        let out = OutputPath::check(&path).unwrap();
        let err = out
            .write_with(|w| {
                w.write_all(b"half")?;
                Err(io::Error::other("disk full"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("out.json") && err.to_string().contains("disk full"));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(leftovers(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_followed_and_kept() {
        let dir = tmpdir("symlink");
        let real = dir.join("real.json");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        write_output(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        // A dangling link creates its target.
        let dangling = dir.join("dangling.json");
        std::os::unix::fs::symlink("made.json", &dangling).unwrap();
        write_output(&dangling, b"made").unwrap();
        assert_eq!(std::fs::read(dir.join("made.json")).unwrap(), b"made");
        assert!(leftovers(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_and_missing_folders_are_refused_before_work() {
        let dir = tmpdir("refused");
        let err = OutputPath::check(&dir).unwrap_err().to_string();
        assert!(err.contains("it is a directory"), "{err}");
        let err = OutputPath::check(&dir.join("missing/x.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        std::fs::write(dir.join("afile"), b"").unwrap();
        let err = OutputPath::check(&dir.join("afile/x.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a directory"), "{err}");
        assert!(OutputPath::check(Path::new("")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
