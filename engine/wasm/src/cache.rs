//! The disk cache of compiled plugins: native code that wasmtime produced from a plugin's wasm,
//! keyed by the wasm's SHA-256 and the engine's compatibility hash, so a restart skips Cranelift.
//!
//! Loading a cached file runs its native code, so the folder must be one that only this user can
//! write: [`CompileCache::open`] creates it with mode 0700 and refuses a folder owned by another
//! user or open to group or others (then plugins are compiled on every start, and the refusal is
//! reported). There is no fallback to the shared temporary folder.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why a cache folder is not used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot create the plugin cache folder {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the plugin cache folder {path} is not private (owner {owner}, mode {mode:o}); it must belong to this user with mode 0700"
    )]
    NotPrivate {
        path: PathBuf,
        owner: u32,
        mode: u32,
    },
}

/// A private folder of compiled plugins.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// The default folder: `$XDG_CACHE_HOME/switchyard/plugins`, else
    /// `$HOME/.cache/switchyard/plugins`; none when neither variable is set.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(base.join("switchyard").join("plugins"))
    }

    /// The cache in [`CompileCache::default_dir`]: `Ok(None)` when there is no such folder, an
    /// error when it is not private.
    pub fn open_default() -> Result<Option<Self>, CacheError> {
        Self::default_dir().map(|d| Self::open(&d)).transpose()
    }

    /// Opens (creating it when missing, mode 0700) a cache folder that only this user can write.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        create_private(dir).map_err(|source| CacheError::Create {
            path: dir.to_owned(),
            source,
        })?;
        check_private(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The compiled component for `wasm`, when this engine cached one.
    pub fn get(&self, engine: &Engine, wasm: &[u8]) -> Option<Component> {
        let path = self.path(engine, wasm);
        if !path.is_file() {
            return None;
        }
        // SAFETY: `deserialize_file` runs native code from the file. The file is in a folder that
        // `open` checked belongs to this user and is closed to everyone else (mode 0700), and it
        // was written by `put` from `Component::serialize`; its name carries the engine's
        // compatibility hash, and wasmtime checks the file's header against the engine. A file
        // that does not deserialize is compiled again by the caller.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize_file(engine, &path) };
        component.ok()
    }

    /// Stores a compiled component. The cache is an optimisation: a failed write is ignored.
    pub fn put(&self, engine: &Engine, wasm: &[u8], component: &Component) {
        let path = self.path(engine, wasm);
        let Ok(bytes) = component.serialize() else {
            return;
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if write_private(&tmp, &bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    fn path(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let digest = Sha256::digest(wasm);
        let name = format!(
            "{}-{:016x}.cwasm",
            hex::encode(digest),
            engine_hash.finish()
        );
        self.dir.join(name)
    }
}

#[cfg(unix)]
fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(unix)]
fn check_private(dir: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|source| CacheError::Create {
        path: dir.to_owned(),
        source,
    })?;
    let me = rustix::process::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != me || mode & 0o077 != 0 {
        return Err(CacheError::NotPrivate {
            path: dir.to_owned(),
            owner: meta.uid(),
            mode,
        });
    }
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Without Unix permissions there is no way to tell a private folder: no cache.
#[cfg(not(unix))]
fn check_private(dir: &Path) -> Result<(), CacheError> {
    Err(CacheError::NotPrivate {
        path: dir.to_owned(),
        owner: 0,
        mode: 0,
    })
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_folder_is_made_private_and_an_open_one_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/plugins");
        CompileCache::open(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = CompileCache::open(&dir).unwrap_err();
        assert!(
            matches!(refused, CacheError::NotPrivate { mode: 0o777, .. }),
            "{refused}"
        );
    }
}
