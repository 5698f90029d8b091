//! Path safety for what snapshots store and restores write: every stored path is relative,
//! `/`-separated and free of `.`/`..`/empty segments, and every symlink target stays inside
//! the index. A crafted repository therefore cannot make a restore write outside its target
//! (the zip-slip class of bug).

use std::path::{Path, PathBuf};

use crate::{RepositoryError, Result};

fn unsafe_path(path: &str, reason: &'static str) -> RepositoryError {
    RepositoryError::UnsafePath {
        path: path.to_owned(),
        reason,
    }
}

/// Checks a path stored in a snapshot.
pub fn validate_relative(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(unsafe_path(path, "empty path"));
    }
    if path.starts_with('/') {
        return Err(unsafe_path(path, "absolute path"));
    }
    if path.contains('\0') {
        return Err(unsafe_path(path, "NUL byte"));
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(unsafe_path(path, "empty, '.' or '..' segment"));
    }
    Ok(())
}

/// `root` joined with a validated relative path.
pub fn join_inside(root: &Path, path: &str) -> Result<PathBuf> {
    validate_relative(path)?;
    Ok(root.join(path))
}

/// Whether a symlink at `link_path` (relative to the index root) pointing at `target` stays
/// inside the index. Absolute targets never do.
///
/// The `..` segments must all come first: the kernel resolves `s/..` through `s`, so when `s`
/// is itself a symlink (to `.`, say) a lexical count of `s/../x` is wrong and the link would
/// point outside. With the climbing segments first, resolution climbs real directories of
/// the restored tree (restore never creates an entry under a symlink), then only descends,
/// into entries that are either real or links checked by this same rule.
pub fn symlink_stays_inside(link_path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    // Depth of the directory holding the link.
    let mut depth: i64 = i64::try_from(link_path.split('/').count()).unwrap_or(i64::MAX) - 1;
    let mut descended = false;
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if descended {
                    return false;
                }
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {
                descended = true;
                depth += 1;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        for ok in ["a", "a/b/c.txt", "dir with space/ü", "..a/b..", "a\\b"] {
            validate_relative(ok).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            "a\0b",
            "a/",
        ] {
            assert!(validate_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn symlink_targets() {
        assert!(symlink_stays_inside("a/link", "../b"));
        assert!(symlink_stays_inside("a/link", "c/d"));
        assert!(symlink_stays_inside("link", "b"));
        assert!(!symlink_stays_inside("link", "../x"));
        assert!(!symlink_stays_inside("a/link", "../../x"));
        assert!(!symlink_stays_inside("a/link", "/etc/passwd"));
        assert!(!symlink_stays_inside("a/link", "b/../../../x"));
        assert!(!symlink_stays_inside("a/link", ""));
        // `..` after a name climbs from wherever that name leads, which may be a symlink.
        assert!(!symlink_stays_inside("link", "s/../x"));
        assert!(!symlink_stays_inside("a/b/link", "../c/../d"));
        assert!(symlink_stays_inside("a/b/link", "../../c/./d"));
    }
}
