//! The project's skip list: tests that cannot pass for a principled reason, each with that
//! reason, plus `max_failures`, the number of failures CI tolerates while the API is being
//! completed.
//!
//! ```yaml
//! max_failures: 0
//! skip:
//!   - file: snapshot.restore/10_basic.yml
//!     test: "Create a snapshot and then restore single index from it"   # omit for the whole file
//!     reason: "needs indices.recovery: Lucene recovery statistics"
//! ```

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use crate::Error;
use crate::suite::TestFile;

/// One skipped test, or a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipEntry {
    /// Test file relative to the test directory, e.g. `snapshot.restore/10_basic.yml`.
    pub file: String,
    /// Test name; `None` skips the whole file.
    pub test: Option<String>,
    /// Why it cannot pass.
    pub reason: String,
}

/// The loaded skip list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipList {
    /// Failures tolerated by `--enforce-max-failures` (CI); `None` tolerates none.
    pub max_failures: Option<u64>,
    /// The entries.
    pub entries: Vec<SkipEntry>,
}

impl SkipList {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| Error::SkipList {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses skip-list text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
        let mut list = Self::default();
        let Some(doc) = docs.into_iter().next() else {
            return Ok(list);
        };
        let Yaml::Hash(top) = doc else {
            return Err("the top level must be a mapping".to_owned());
        };
        for (k, v) in top {
            match k.as_str() {
                Some("max_failures") => {
                    let n = v
                        .as_i64()
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or("[max_failures] must be a non-negative integer")?;
                    list.max_failures = Some(n);
                }
                Some("skip") => match v {
                    Yaml::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let entry = parse_entry(item)
                                .map_err(|m| format!("skip entry {}: {m}", i + 1))?;
                            if list
                                .entries
                                .iter()
                                .any(|e| e.file == entry.file && e.test == entry.test)
                            {
                                return Err(format!("skip entry {} is a duplicate", i + 1));
                            }
                            list.entries.push(entry);
                        }
                    }
                    Yaml::Null => {}
                    _ => return Err("[skip] must be a list".to_owned()),
                },
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        Ok(list)
    }

    /// The entry skipping `test` of `file`, if any (a whole-file entry counts).
    pub fn lookup(&self, file: &str, test: &str) -> Option<&SkipEntry> {
        self.entries
            .iter()
            .find(|e| e.file == file && e.test.as_deref().is_none_or(|t| t == test))
    }

    /// Entries that name no loaded file or test: stale, or misspelled.
    pub fn unmatched<'a>(&'a self, files: &[TestFile]) -> Vec<&'a SkipEntry> {
        self.entries
            .iter()
            .filter(|e| {
                !files.iter().any(|f| {
                    f.name == e.file
                        && e.test
                            .as_deref()
                            .is_none_or(|t| f.tests.iter().any(|c| c.name == t))
                })
            })
            .collect()
    }
}

fn parse_entry(item: &Yaml) -> Result<SkipEntry, String> {
    let Yaml::Hash(h) = item else {
        return Err("must be a mapping".to_owned());
    };
    let (mut file, mut test, mut reason) = (None, None, None);
    for (k, v) in h {
        let value = || {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("[{}] must be a string", k.as_str().unwrap_or("?")))
        };
        match k.as_str() {
            Some("file") => file = Some(value()?),
            Some("test") => test = Some(value()?),
            Some("reason") => reason = Some(value()?),
            _ => return Err(format!("unknown key {k:?}")),
        }
    }
    let file = file.ok_or("[file] is required")?;
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .ok_or("[reason] is required and must not be empty")?;
    Ok(SkipEntry { file, test, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"
max_failures: 12
skip:
  - file: snapshot.restore/10_basic.yml
    test: "Create a snapshot and then restore single index from it"
    reason: "needs indices.recovery"
  - file: snapshot.restore/11_restore_over_existing_data_stream.yml
    reason: "data streams"
"#;

    #[test]
    fn loads_and_looks_up() {
        let list = SkipList::parse(LIST).unwrap();
        assert_eq!(list.max_failures, Some(12));
        assert_eq!(list.entries.len(), 2);
        assert_eq!(
            list.lookup(
                "snapshot.restore/10_basic.yml",
                "Create a snapshot and then restore single index from it"
            )
            .unwrap()
            .reason,
            "needs indices.recovery"
        );
        assert!(
            list.lookup("snapshot.restore/10_basic.yml", "Other")
                .is_none()
        );
        assert_eq!(
            list.lookup(
                "snapshot.restore/11_restore_over_existing_data_stream.yml",
                "any"
            )
            .unwrap()
            .reason,
            "data streams"
        );
        assert!(list.lookup("snapshot.get/10_basic.yml", "x").is_none());
    }

    #[test]
    fn rejects_entries_without_reasons_and_unknown_keys() {
        assert!(SkipList::parse("skip:\n  - file: a.yml\n").is_err());
        assert!(SkipList::parse("skip:\n  - file: a.yml\n    reason: ' '\n").is_err());
        assert!(SkipList::parse("skip:\n  - reason: r\n").is_err());
        assert!(SkipList::parse("skip:\n  - file: a\n    reason: r\n    tset: x\n").is_err());
        assert!(SkipList::parse("max_failures: -1\n").is_err());
        assert!(SkipList::parse("maxfailures: 1\n").is_err());
        assert!(
            SkipList::parse("skip:\n  - {file: a, reason: r}\n  - {file: a, reason: s}\n").is_err()
        );
        assert_eq!(SkipList::parse("").unwrap(), SkipList::default());
    }

    #[test]
    fn reports_stale_entries() {
        let list = SkipList::parse(LIST).unwrap();
        let file = TestFile::parse(
            "snapshot.restore/10_basic.yml",
            "\"Create a snapshot and then restore single index from it\":\n  - do: {info: {}}\n",
        )
        .unwrap();
        let stale = list.unmatched(&[file]);
        assert_eq!(stale.len(), 1);
        assert_eq!(
            stale[0].file,
            "snapshot.restore/11_restore_over_existing_data_stream.yml"
        );
    }
}
