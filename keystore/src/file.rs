//! Durable, atomic replacement of a file: write a temporary sibling, fsync it, rename it over
//! the target, fsync the directory. A crash or error at any point leaves either the old file
//! or the new one, never a mixture, and never a stray temporary file on the error paths.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::KeystoreError;

/// Points at which tests make the write fail, to prove the old file survives each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Created,
    Written,
    Synced,
}

/// Atomically replaces `path` with `bytes`, with mode 0600. If `path` exists, its owner and
/// group are carried over to the new file (an operator running the CLI as root must not leave
/// a keystore the service user can no longer read).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    write_atomic_failing_at(path, bytes, None)
}

pub(crate) fn write_atomic_failing_at(
    path: &Path,
    bytes: &[u8],
    fail_at: Option<Stage>,
) -> Result<(), KeystoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map_or_else(|| "keystore".into(), |n| n.to_string_lossy());
    let suffix: [u8; 8] = crate::crypto::random()?;
    let tmp = dir.join(format!(".{file_name}.tmp-{}", hex(&suffix)));
    let previous_owner = fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| KeystoreError::io("creating temporary file", &tmp, e))?;
    let guard = RemoveOnDrop(Some(tmp.clone()));

    let injected = |stage: Stage| -> Result<(), KeystoreError> {
        if fail_at == Some(stage) {
            return Err(KeystoreError::io(
                "injected failure",
                &tmp,
                std::io::Error::other(format!("{stage:?}")),
            ));
        }
        Ok(())
    };
    injected(Stage::Created)?;
    // The umask may have narrowed or (with create_new + mode) kept 0600; set it explicitly.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| KeystoreError::io("setting mode 0600 on", &tmp, e))?;
    if let Some((uid, gid)) = previous_owner {
        let meta = file
            .metadata()
            .map_err(|e| KeystoreError::io("reading", &tmp, e))?;
        if (meta.uid(), meta.gid()) != (uid, gid) {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .map_err(|e| KeystoreError::io("preserving the owner of", path, e))?;
        }
    }
    file.write_all(bytes)
        .map_err(|e| KeystoreError::io("writing", &tmp, e))?;
    injected(Stage::Written)?;
    file.sync_all()
        .map_err(|e| KeystoreError::io("syncing", &tmp, e))?;
    drop(file);
    injected(Stage::Synced)?;
    fs::rename(&tmp, path).map_err(|e| KeystoreError::io("replacing", path, e))?;
    guard.disarm();
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeystoreError::io("syncing directory", &dir, e))?;
    Ok(())
}

struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ks");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failure_at_any_stage_keeps_the_old_file_and_leaves_no_temporary() {
        for stage in [Stage::Created, Stage::Written, Stage::Synced] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("ks");
            write_atomic(&p, b"old").unwrap();
            let err = write_atomic_failing_at(&p, b"new", Some(stage)).unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
            assert_eq!(fs::read(&p).unwrap(), b"old", "{stage:?}");
            let names: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from("ks")], "{stage:?}");
        }
    }

    #[test]
    fn preserves_the_owner() {
        // Only root can hand a file to another user; elsewhere the owner is ourselves anyway.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ks");
        write_atomic(&p, b"old").unwrap();
        let is_root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let (uid, gid) = if is_root {
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
            (65534, 65534)
        } else {
            let m = fs::metadata(&p).unwrap();
            (m.uid(), m.gid())
        };
        write_atomic(&p, b"new").unwrap();
        let m = fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid));
    }
}
