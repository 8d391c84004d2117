//! Folders that start-up and `check-config` share: whether one can be written in, or
//! created (a probe file is created and removed, since permission bits do not tell: root,
//! read-only mounts, ACLs), and creating the private ones that hold events and keys.

use std::path::{Path, PathBuf};

/// Why a folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("folder {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("cannot write in {}: {source}", path.display())]
    NotWritable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether files can be created in `dir`. With `create`, a missing `dir` is fine when the
/// nearest folder that exists above it can be written in (start-up creates it then).
pub fn writable_folder(dir: &Path, create: bool) -> Result<(), FolderError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let existing = if create {
        // A relative path's last ancestor is "", the working directory, which `exists`
        // does not take for a folder.
        dir.ancestors()
            .find(|a| a.exists())
            .unwrap_or(Path::new("."))
    } else {
        dir
    };
    if !existing.exists() {
        return Err(FolderError::Missing(existing.to_path_buf()));
    }
    if !existing.is_dir() {
        return Err(FolderError::NotAFolder(existing.to_path_buf()));
    }
    // Named per process, created new and removed at once.
    let probe = existing.join(format!(".hookwarden-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|source| FolderError::NotWritable {
            path: existing.to_path_buf(),
            source,
        })
}

/// Creates `dir` and its missing parents, private to the owner (0700): they hold events,
/// which carry personal data, and keys. A folder that exists keeps its mode.
pub fn create_private_folder(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_judged_by_what_can_be_created_in_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(writable_folder(dir.path(), false).is_ok());
        let missing = dir.path().join("a/b");
        assert!(matches!(
            writable_folder(&missing, false),
            Err(FolderError::Missing(_))
        ));
        assert!(writable_folder(&missing, true).is_ok());
        assert!(!missing.exists(), "a check creates nothing");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("write");
        assert!(
            matches!(writable_folder(&file.join("sub"), true), Err(FolderError::NotAFolder(p)) if p == file)
        );
        assert!(matches!(
            writable_folder(&file, false),
            Err(FolderError::NotAFolder(_))
        ));
    }

    #[test]
    fn new_folders_are_private_and_existing_ones_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        let new = dir.path().join("a/b");
        create_private_folder(&new).expect("create");
        assert_eq!((mode(&new), mode(&dir.path().join("a"))), (0o700, 0o700));
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        create_private_folder(&new).expect("again");
        assert_eq!(mode(&new), 0o750);
    }
}
