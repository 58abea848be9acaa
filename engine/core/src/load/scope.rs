//! Which files a config may load: mapping and plugin paths are relative to the config's folder
//! and must stay inside it, or inside a folder the config names in `allowed_dirs`. A path that
//! leaves them (`../../etc/shadow`, an absolute path, a symbolic link pointing out) is refused
//! before the file is opened, so a config cannot make `validate` or `serve` read, and print
//! parts of, files it was not meant to. A file loaded in the scope may not use the config's
//! secret variables outside secret fields ([`check_file_in`](super::check_file_in)).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The folders files may be loaded from.
#[derive(Debug, Clone)]
pub struct FileScope {
    /// The config's folder: relative paths start here.
    base: PathBuf,
    /// The folders (resolved, links followed) that loaded files must be inside.
    roots: Vec<PathBuf>,
    /// The variables the config's secret fields name: refused in other fields of loaded files.
    secret_variables: BTreeSet<String>,
}

impl FileScope {
    /// The scope of a config in `base`, widened by `allowed` (relative to `base`, or absolute).
    /// A folder that does not exist widens nothing.
    pub fn new(base: &Path, allowed: &[String]) -> Self {
        // A config named without its folder (`validate switchyard.yaml`) is in the current one:
        // its folder is `""`, made `.`. The folder is made absolute, so that a missing file's
        // path is judged against the real folder (a `..` from `.` climbs out of it).
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        // Where the current folder cannot be read, the folder stays as given.
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        let base = base.as_path();
        let roots = std::iter::once(base.to_path_buf())
            .chain(allowed.iter().map(|dir| base.join(dir)))
            .filter_map(|dir| dir.canonicalize().ok())
            .collect();
        Self {
            base: base.to_path_buf(),
            roots,
            secret_variables: BTreeSet::new(),
        }
    }

    /// The scope with the variables the config's secret fields name (see
    /// [`interpolate::secret_variables`](super::interpolate::secret_variables)).
    pub fn with_secret_variables(mut self, variables: BTreeSet<String>) -> Self {
        self.secret_variables = variables;
        self
    }

    /// The variables the config's secret fields name.
    pub fn secret_variables(&self) -> &BTreeSet<String> {
        &self.secret_variables
    }

    /// The config's folder.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The file `reference` names (relative to the config's folder), if it exists and lies in the
    /// scope; else why not. The message names the path as written, never the file's content.
    pub fn resolve(&self, reference: &str) -> Result<PathBuf, String> {
        let path = self.base.join(reference);
        // A missing file is judged by its path with `..` resolved, so that the answer says
        // nothing of which files exist outside the scope.
        let real = path.canonicalize().ok();
        let judged = real.clone().unwrap_or_else(|| lexical(&path));
        if !self.roots.iter().any(|root| judged.starts_with(root)) {
            return Err(format!(
                "`{reference}` is outside the config's folder; move the file next to the config \
                 or name its folder in `allowed_dirs`"
            ));
        }
        match real {
            Some(real) if real.is_file() => Ok(real),
            Some(_) => Err(format!("`{}` is not a file", path.display())),
            None => Err(format!("no file at `{}`", path.display())),
        }
    }
}

/// `path` made absolute, with `.` and `..` resolved without touching the file system (the
/// existing part is resolved for real, links included).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    let mut existing = out.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name().map(ToOwned::to_owned), existing.pop()) {
            (Some(name), true) => rest.push(name),
            _ => return out,
        }
    }
    let mut real = existing.canonicalize().unwrap_or(existing);
    real.extend(rest.iter().rev());
    real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_pass_and_paths_out_are_refused_unless_allowed() {
        let top = tempfile::tempdir().unwrap();
        let config_dir = top.path().join("config");
        let shared = top.path().join("shared");
        std::fs::create_dir_all(config_dir.join("mappings")).unwrap();
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(config_dir.join("mappings/m.yaml"), "rows: []").unwrap();
        std::fs::write(shared.join("s.yaml"), "rows: []").unwrap();

        let scope = FileScope::new(&config_dir, &[]);
        assert!(scope.resolve("mappings/m.yaml").is_ok());
        let out = scope.resolve("../shared/s.yaml").unwrap_err();
        assert!(out.contains("outside the config's folder"), "{out}");
        let absolute = shared.join("s.yaml").display().to_string();
        assert!(
            scope.resolve(&absolute).is_err(),
            "absolute paths leave it too"
        );
        assert!(
            scope
                .resolve("missing.yaml")
                .unwrap_err()
                .contains("no file")
        );
        let missing_outside = scope.resolve("../elsewhere/missing.yaml").unwrap_err();
        assert!(missing_outside.contains("outside"), "{missing_outside}");
        assert!(
            scope
                .resolve("mappings")
                .unwrap_err()
                .contains("not a file")
        );

        let widened = FileScope::new(&config_dir, &["../shared".to_owned()]);
        assert!(widened.resolve("../shared/s.yaml").is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_that_points_out_is_refused() {
        let top = tempfile::tempdir().unwrap();
        let config_dir = top.path().join("config");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(top.path().join("secret.yaml"), "k: v").unwrap();
        std::os::unix::fs::symlink(top.path().join("secret.yaml"), config_dir.join("m.yaml"))
            .unwrap();
        let refused = FileScope::new(&config_dir, &[])
            .resolve("m.yaml")
            .unwrap_err();
        assert!(refused.contains("outside"), "{refused}");
    }
}
