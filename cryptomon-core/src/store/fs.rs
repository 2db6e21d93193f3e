//! `FsStore`: the embedded default. Keys map to the same relative paths under a root directory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Fetch, Object, PutMode, Store, Version};
use crate::error::{Error, Result};
use crate::keys::{validate_key, validate_prefix};

/// Names the store keeps for itself beside the objects: temp files of writes in progress and
/// per-key lock files. `list` never shows them.
const OWN_PREFIX: &str = ".cryptomon-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A store on a local directory.
///
/// Writes go to a temp file in the target's directory, are flushed to disk, then renamed over the
/// target, so a reader (or a process killed mid-write) never sees a torn object. Conditional
/// writes hold an OS file lock on a per-key lock file, so they are atomic across processes.
/// Keys that could escape the root are refused before any path is built.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Opens an existing store directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(FsStore { root }),
            Ok(_) => Err(unavailable(&root, "is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(unavailable(&root, "does not exist"))
            }
            Err(e) => Err(unavailable(&root, &e.to_string())),
        }
    }

    /// Opens a store directory, creating it (and its parents) if needed.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|e| unavailable(&root, &format!("cannot create: {e}")))?;
        FsStore::open(root)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        // `list` hides these names, and a lock or temp file could collide with such a key.
        if key
            .split('/')
            .any(|segment| segment.starts_with(OWN_PREFIX))
        {
            return Err(Error::InvalidKey {
                key: key.to_owned(),
                reason: "a segment starting with \".cryptomon-\" is reserved by the file store",
            });
        }
        Ok(self.root.join(key))
    }
}

fn unavailable(root: &Path, reason: &str) -> Error {
    Error::StoreUnavailable {
        location: root.display().to_string(),
        reason: reason.to_owned(),
    }
}

impl fmt::Display for FsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file store {}", self.root.display())
    }
}

fn io_err(op: &'static str, key: &str, e: io::Error) -> Error {
    let retryable = matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    );
    Error::store(op, key, retryable, e)
}

#[cfg(unix)]
fn version_of(meta: &fs::Metadata) -> Version {
    use std::os::unix::fs::MetadataExt;
    // Every write renames a new file into place, so the inode changes with each version; mtime
    // and length guard against inode reuse.
    Version(format!(
        "{:x}-{:x}.{:x}-{:x}",
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.len()
    ))
}

#[cfg(not(unix))]
fn version_of(meta: &fs::Metadata) -> Version {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Version(format!("{mtime:x}-{:x}", meta.len()))
}

fn read_object(path: &Path, if_none_match: Option<&Version>) -> io::Result<Fetch> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        // Below a stored object (`a.json/b`): no such key, as on any other store.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Fetch::Missing);
        }
        Err(e) => return Err(e),
    };
    // The version comes from the open handle, so it belongs to the bytes read even if a writer
    // renames a new file into place meanwhile.
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(Fetch::Missing);
    }
    let version = version_of(&meta);
    if if_none_match == Some(&version) {
        return Ok(Fetch::NotModified);
    }
    let mut body = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut body)?;
    Ok(Fetch::Found(Object {
        body: Bytes::from(body),
        version,
    }))
}

fn current_version(path: &Path) -> io::Result<Option<Version>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(version_of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `body` to a new temp file beside `path`, flushed to disk.
fn write_temp(path: &Path, body: &[u8]) -> io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{OWN_PREFIX}tmp-{}-{n}-{name}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let written = file.write_all(body).and_then(|()| file.sync_data());
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(temp)
}

/// Holds the per-key OS lock while a conditional write checks and swaps.
fn lock_key(path: &Path) -> io::Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{OWN_PREFIX}lock-{name}")))?;
    lock.lock()?;
    Ok(lock)
}

fn put_blocking(key: &str, path: &Path, body: &[u8], mode: &PutMode) -> Result<Version> {
    let temp = write_temp(path, body).map_err(|e| io_err("put", key, e))?;
    let outcome = swap_in(key, path, &temp, mode);
    if outcome.is_err() || matches!(mode, PutMode::Create) {
        // After a hard link (Create) or a failed swap, the temp name still exists.
        let _ = fs::remove_file(&temp);
    }
    outcome
}

/// Makes a rename or link in `path`'s directory durable; a failure here does not undo the write.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

fn swap_in(key: &str, path: &Path, temp: &Path, mode: &PutMode) -> Result<Version> {
    if let PutMode::Create = mode {
        // A hard link fails if the target exists: create-if-absent in one atomic step, with no
        // lock (and so no lock file beside every snapshot).
        return match fs::hard_link(temp, path) {
            Ok(()) => {
                sync_dir(path);
                current_version(path)
                    .map_err(|e| io_err("put", key, e))?
                    .ok_or_else(|| Error::Precondition { key: key.into() })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists { key: key.into() })
            }
            Err(e) => Err(io_err("put", key, e)),
        };
    }
    // Overwrite and Update take the key's lock, so an update's check and swap are one step.
    let _lock = lock_key(path).map_err(|e| io_err("put", key, e))?;
    match mode {
        PutMode::Overwrite | PutMode::Create => {}
        PutMode::Update(expected) => {
            let current = current_version(path).map_err(|e| io_err("put", key, e))?;
            if current.as_ref() != Some(expected) {
                return Err(Error::Precondition { key: key.into() });
            }
        }
    }
    fs::rename(temp, path).map_err(|e| io_err("put", key, e))?;
    sync_dir(path);
    current_version(path)
        .map_err(|e| io_err("put", key, e))?
        .ok_or_else(|| Error::Precondition { key: key.into() })
}

fn list_blocking(root: &Path, prefix: &str) -> io::Result<Vec<String>> {
    // Start the walk at the deepest directory the prefix names completely.
    let dir_part = match prefix.rfind('/') {
        Some(i) => &prefix[..i],
        None => "",
    };
    let start = if dir_part.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir_part)
    };
    let mut keys = Vec::new();
    let mut stack = vec![(start, dir_part.to_owned())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue; // not UTF-8: cannot be a key of ours
            };
            if name.starts_with(OWN_PREFIX) {
                continue;
            }
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                // Descend only where keys under the prefix can be.
                if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                    stack.push((entry.path(), key));
                }
            } else if key.starts_with(prefix) && validate_key(&key).is_ok() {
                keys.push(key);
            }
        }
    }
    keys.sort_unstable();
    Ok(keys)
}

async fn blocking<T: Send + 'static>(
    op: &'static str,
    key: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::store(op, key, true, e))?
}

#[async_trait]
impl Store for FsStore {
    async fn get_opts(&self, key: &str, if_none_match: Option<&Version>) -> Result<Fetch> {
        let path = self.path(key)?;
        let owned_key = key.to_owned();
        let expected = if_none_match.cloned();
        blocking("get", key, move || {
            read_object(&path, expected.as_ref()).map_err(|e| io_err("get", &owned_key, e))
        })
        .await
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        let path = self.path(key)?;
        let owned_key = key.to_owned();
        blocking("put", key, move || {
            put_blocking(&owned_key, &path, &body, &mode)
        })
        .await
    }

    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        if !(prefix.is_empty() || prefix.ends_with('/')) {
            return Err(Error::InvalidKey {
                key: prefix.to_owned(),
                reason: "a prefix of directories must end in '/'",
            });
        }
        let dir = self.root.join(prefix);
        let owned = prefix.to_owned();
        blocking("list", prefix, move || {
            let mut out = Vec::new();
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                // Nothing there, or a prefix below a stored object: no directories.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(out);
                }
                Err(e) => return Err(io_err("list", &owned, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err("list", &owned, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let is_dir = entry
                    .file_type()
                    .map_err(|e| io_err("list", &owned, e))?
                    .is_dir();
                if is_dir && !name.starts_with(OWN_PREFIX) {
                    out.push(format!("{owned}{name}/"));
                }
            }
            out.sort_unstable();
            Ok(out)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let root = self.root.clone();
        let owned = prefix.to_owned();
        blocking("list", prefix, move || {
            list_blocking(&root, &owned).map_err(|e| io_err("list", &owned, e))
        })
        .await
    }
}
