//! Resources: models, libraries and data that sessions use.
//!
//! A resource is created from a local file, a directory, several files, or
//! in-memory bytes with a file name. Its contents are read lazily, on first
//! use. Resources are registered to sessions; one resource can be shared by
//! many sessions, and it counts them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::{Error, Result};

/// Resource id; ids start at 1 and are unique in the process.
pub type ResourceId = u64;

static NEXT_RESOURCE_ID: AtomicU64 = AtomicU64::new(1);

/// Resource types, with upstream vAccel's `VACCEL_RESOURCE_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ResourceType {
    /// A shared library (for EXEC_WITH_RESOURCE).
    Lib = 0,
    /// Data.
    Data = 1,
    /// A model (e.g. an ONNX file).
    Model = 2,
}

impl ResourceType {
    /// From the numeric value.
    pub fn from_u32(v: u32) -> Option<ResourceType> {
        match v {
            0 => Some(ResourceType::Lib),
            1 => Some(ResourceType::Data),
            2 => Some(ResourceType::Model),
            _ => None,
        }
    }

    /// Upstream-style name.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Lib => "LIB",
            ResourceType::Data => "DATA",
            ResourceType::Model => "MODEL",
        }
    }

    /// Parse `lib`, `data` or `model` (any case) or a number.
    pub fn parse(s: &str) -> Result<ResourceType> {
        if let Ok(n) = s.parse::<u32>() {
            return ResourceType::from_u32(n).ok_or_else(|| {
                Error::inval(format!(
                    "unknown resource type {n}: use 0 (lib), 1 (data) or 2 (model)"
                ))
            });
        }
        match s.to_ascii_lowercase().as_str() {
            "lib" => Ok(ResourceType::Lib),
            "data" => Ok(ResourceType::Data),
            "model" => Ok(ResourceType::Model),
            _ => Err(Error::inval(format!(
                "unknown resource type '{s}': use lib, data or model"
            ))),
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One file of a resource: a name, maybe a path on disk, and its bytes
/// (read on first access).
pub struct File {
    name: String,
    path: Option<PathBuf>,
    data: OnceLock<Arc<[u8]>>,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("loaded", &self.data.get().is_some())
            .finish()
    }
}

impl File {
    fn on_disk(path: PathBuf) -> File {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        File {
            name,
            path: Some(path),
            data: OnceLock::new(),
        }
    }

    /// A file on disk that is not checked now (plugin-side mirrors of host
    /// resources; the host already checked it).
    pub fn from_disk_unchecked(path: PathBuf) -> File {
        File::on_disk(path)
    }

    /// A file held in memory.
    pub fn in_memory(name: impl Into<String>, data: impl Into<Arc<[u8]>>) -> File {
        let f = File {
            name: name.into(),
            path: None,
            data: OnceLock::new(),
        };
        let _ = f.data.set(data.into());
        f
    }

    /// The file name (no directories).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path on disk, if the file came from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the bytes have been read yet.
    pub fn is_loaded(&self) -> bool {
        self.data.get().is_some()
    }

    /// The bytes, read from disk on first call.
    pub fn bytes(&self) -> Result<Arc<[u8]>> {
        if let Some(d) = self.data.get() {
            return Ok(d.clone());
        }
        let path = self
            .path
            .as_ref()
            .ok_or_else(|| Error::io("file has neither data nor a path"))?;
        let data: Arc<[u8]> = std::fs::read(path)
            .map_err(|e| {
                Error::from_io(&e, format_args!("reading resource file {}", path.display()))
            })?
            .into();
        Ok(self.data.get_or_init(|| data).clone())
    }
}

struct Inner {
    id: ResourceId,
    kind: ResourceType,
    files: Vec<File>,
    /// Sessions this resource is registered to (its reference count).
    sessions: Mutex<BTreeSet<u64>>,
}

/// A resource handle. Cloning is cheap and shares the resource.
#[derive(Clone)]
pub struct Resource {
    inner: Arc<Inner>,
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resource")
            .field("id", &self.inner.id)
            .field("type", &self.inner.kind)
            .field("files", &self.inner.files)
            .finish()
    }
}

fn check_file(path: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::from_io(&e, format_args!("resource path {}", path.display())))?;
    if !meta.is_file() {
        return Err(Error::inval(format!(
            "resource path {} is not a regular file",
            path.display()
        )));
    }
    Ok(path.to_path_buf())
}

impl Resource {
    fn with_files(kind: ResourceType, files: Vec<File>) -> Resource {
        Resource {
            inner: Arc::new(Inner {
                id: NEXT_RESOURCE_ID.fetch_add(1, Ordering::Relaxed),
                kind,
                files,
                sessions: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// A resource from a file or a directory (every regular file in it, sorted
    /// by name). The path must exist; contents are read on first use.
    pub fn from_path(path: impl AsRef<Path>, kind: ResourceType) -> Result<Resource> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::from_io(&e, format_args!("resource path {}", path.display())))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            let rd = std::fs::read_dir(path).map_err(|e| {
                Error::from_io(&e, format_args!("reading directory {}", path.display()))
            })?;
            for entry in rd {
                let entry = entry.map_err(|e| {
                    Error::from_io(&e, format_args!("reading directory {}", path.display()))
                })?;
                let p = entry.path();
                if p.is_file() {
                    files.push(p);
                }
            }
            if files.is_empty() {
                return Err(Error::inval(format!(
                    "resource directory {} has no regular files",
                    path.display()
                )));
            }
            files.sort();
            return Ok(Resource::with_files(
                kind,
                files.into_iter().map(File::on_disk).collect(),
            ));
        }
        Ok(Resource::with_files(
            kind,
            vec![File::on_disk(check_file(path)?)],
        ))
    }

    /// A resource from several files, in the order given.
    pub fn from_paths<P: AsRef<Path>>(paths: &[P], kind: ResourceType) -> Result<Resource> {
        if paths.is_empty() {
            return Err(Error::inval("a resource needs at least one file"));
        }
        let files = paths
            .iter()
            .map(|p| check_file(p.as_ref()).map(File::on_disk))
            .collect::<Result<Vec<_>>>()?;
        Ok(Resource::with_files(kind, files))
    }

    /// A resource from bytes in memory, with a file name (some plugins use the
    /// name's extension to pick a format).
    pub fn from_bytes(
        data: impl Into<Arc<[u8]>>,
        name: impl Into<String>,
        kind: ResourceType,
    ) -> Result<Resource> {
        let name = name.into();
        if name.is_empty() || name.contains('/') {
            return Err(Error::inval(format!(
                "resource file name '{name}' must be non-empty and contain no '/'"
            )));
        }
        Ok(Resource::with_files(
            kind,
            vec![File::in_memory(name, data)],
        ))
    }

    /// A resource from already-built files (used by transports and plugin glue).
    pub fn from_files(files: Vec<File>, kind: ResourceType) -> Result<Resource> {
        if files.is_empty() {
            return Err(Error::inval("a resource needs at least one file"));
        }
        Ok(Resource::with_files(kind, files))
    }

    /// A resource with a given id (plugin-side mirrors of host resources).
    #[doc(hidden)]
    pub fn with_id(id: ResourceId, files: Vec<File>, kind: ResourceType) -> Resource {
        Resource {
            inner: Arc::new(Inner {
                id,
                kind,
                files,
                sessions: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// The id.
    pub fn id(&self) -> ResourceId {
        self.inner.id
    }

    /// The type.
    pub fn kind(&self) -> ResourceType {
        self.inner.kind
    }

    /// The files.
    pub fn files(&self) -> &[File] {
        &self.inner.files
    }

    /// The bytes of the first file (the usual single-file case).
    pub fn bytes(&self) -> Result<Arc<[u8]>> {
        self.inner.files[0].bytes()
    }

    /// Number of sessions this resource is registered to.
    pub fn refcount(&self) -> usize {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether it is registered to session `sess`.
    pub fn is_registered_to(&self, sess: u64) -> bool {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&sess)
    }

    pub(crate) fn add_session(&self, sess: u64) -> bool {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sess)
    }

    pub(crate) fn remove_session(&self, sess: u64) -> bool {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&sess)
    }

    /// Check that the resource can be dropped: `EBUSY` while sessions still use it.
    pub fn release(self) -> Result<()> {
        let n = self.refcount();
        if n > 0 {
            return Err(Error::busy(format!(
                "resource {} is still registered to {n} session(s): unregister it first",
                self.id()
            )));
        }
        Ok(())
    }

    /// Whether two handles refer to the same resource.
    pub fn ptr_eq(&self, other: &Resource) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(ResourceType::Lib as u32, 0);
        assert_eq!(ResourceType::Data as u32, 1);
        assert_eq!(ResourceType::Model as u32, 2);
        assert_eq!(ResourceType::parse("MODEL").unwrap(), ResourceType::Model);
        assert_eq!(ResourceType::parse("1").unwrap(), ResourceType::Data);
        assert!(ResourceType::parse("blob").is_err());
    }

    #[test]
    fn missing_file_is_enoent() {
        let e = Resource::from_path("/nonexistent/model.onnx", ResourceType::Model).unwrap_err();
        assert_eq!(e.code(), crate::Code::NoEnt);
        assert!(e.message().contains("/nonexistent/model.onnx"));
        let e = Resource::from_paths(&["/nonexistent/a"], ResourceType::Data).unwrap_err();
        assert_eq!(e.code(), crate::Code::NoEnt);
        assert_eq!(
            Resource::from_paths::<&str>(&[], ResourceType::Data)
                .unwrap_err()
                .code(),
            crate::Code::Inval
        );
    }

    #[test]
    fn lazy_loading_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.bin"), b"bbb").unwrap();
        std::fs::write(dir.path().join("a.bin"), b"aa").unwrap();
        let r = Resource::from_path(dir.path(), ResourceType::Data).unwrap();
        assert_eq!(r.files().len(), 2);
        assert_eq!(r.files()[0].name(), "a.bin");
        assert!(!r.files()[0].is_loaded());
        assert_eq!(&*r.files()[0].bytes().unwrap(), b"aa");
        assert!(r.files()[0].is_loaded());
        // A file that disappears before first use gives ENOENT then.
        let single = Resource::from_path(dir.path().join("b.bin"), ResourceType::Data).unwrap();
        std::fs::remove_file(dir.path().join("b.bin")).unwrap();
        assert_eq!(single.bytes().unwrap_err().code(), crate::Code::NoEnt);
    }

    #[test]
    fn ids_are_unique_and_positive() {
        let a = Resource::from_bytes(vec![1u8], "a", ResourceType::Data).unwrap();
        let b = Resource::from_bytes(vec![1u8], "b", ResourceType::Data).unwrap();
        assert!(a.id() >= 1 && b.id() > a.id());
        assert!(Resource::from_bytes(vec![], "x/y", ResourceType::Data).is_err());
    }

    #[test]
    fn refcount_blocks_release() {
        let a = Resource::from_bytes(vec![1u8], "a", ResourceType::Data).unwrap();
        assert!(a.add_session(1));
        assert!(!a.add_session(1));
        assert!(a.add_session(2));
        assert_eq!(a.refcount(), 2);
        assert_eq!(a.clone().release().unwrap_err().code(), crate::Code::Busy);
        a.remove_session(1);
        a.remove_session(2);
        a.release().unwrap();
    }
}
