//! The dataset generator: determinism, shapes, and what `mutate` changes.

use std::collections::BTreeSet;
use std::path::Path;

use coffer_testfixtures::dataset::{self, Manifest};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOTAL: u64 = 8 << 20;

fn mixed(dir: &Path, seed: u64) -> Result<Manifest, Box<dyn std::error::Error>> {
    dataset::mixed_bytes(dir, TOTAL, seed)?;
    Ok(dataset::manifest(dir)?)
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let a = mixed(&tmp.path().join("a"), 1)?;
    let b = mixed(&tmp.path().join("b"), 1)?;
    a.ensure_same(&b)?;
    assert_eq!(a.to_string(), b.to_string());

    let c = mixed(&tmp.path().join("c"), 2)?;
    let diff = a.diff(&c);
    assert!(!diff.is_empty());
    // Same layout, different content.
    let paths = |m: &Manifest| m.entries().keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(paths(&a), paths(&c));
    assert!(
        a.entries()
            .iter()
            .all(|(p, e)| c.get(p).unwrap().sha256 != e.sha256)
    );
    Ok(())
}

#[test]
fn mixed_has_the_scripts_shape() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let m = mixed(tmp.path(), 3)?;
    assert_eq!(m.get("large/disk.img").unwrap().size, TOTAL / 2);
    let medium: Vec<_> = m
        .entries()
        .iter()
        .filter(|(p, _)| p.starts_with("medium/"))
        .collect();
    assert_eq!(medium.len(), 64);
    assert!(medium.iter().all(|(_, e)| e.size == TOTAL / 4 / 64));
    assert!(m.get("medium/m00.bin").is_some() && m.get("medium/m63.bin").is_some());
    let small: Vec<_> = m
        .entries()
        .iter()
        .filter(|(p, _)| p.starts_with("small/"))
        .collect();
    assert_eq!(small.len() as u64, TOTAL / 4 / (16 << 10));
    assert!(
        small
            .iter()
            .all(|(_, e)| (1 << 10..31 << 10).contains(&e.size))
    );
    assert!(m.get("small/d00/e00/f000000.dat").is_some());
    assert!(m.get("small/d15/e00/f000015.dat").is_some());
    assert!(m.get("small/d00/e01/f000016.dat").is_some());
    assert_eq!(m.len(), 1 + 64 + small.len());

    // Every eighth medium file and every fourth small file is text, the rest random bytes.
    let text = std::fs::read(tmp.path().join("medium/m08.bin"))?;
    assert!(
        text.starts_with(b"00000000 ") && text.is_ascii(),
        "m08 is text"
    );
    let random = std::fs::read(tmp.path().join("medium/m01.bin"))?;
    assert!(!random.is_ascii(), "m01 is random");
    let text = std::fs::read(tmp.path().join("small/d04/e00/f000004.dat"))?;
    assert!(text.starts_with(b"00000000 ") && text.is_ascii());
    Ok(())
}

#[test]
fn small_makes_many_small_files() -> TestResult {
    let tmp = tempfile::tempdir()?;
    dataset::small(tmp.path(), 300, 9)?;
    let m = dataset::manifest(tmp.path())?;
    assert_eq!(m.len(), 300);
    assert!(
        m.entries()
            .values()
            .all(|e| (512..16 << 10).contains(&e.size))
    );
    assert!(m.get("small/d11/e02/f000043.dat").is_some());
    let again = tempfile::tempdir()?;
    dataset::small(again.path(), 300, 9)?;
    m.ensure_same(&dataset::manifest(again.path())?)?;
    Ok(())
}

#[test]
fn mutate_is_deterministic_and_changes_what_it_says() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let before = mixed(&a, 5)?;
    mixed(&b, 5)?;
    let done = dataset::mutate(&a, 11)?;
    let done_b = dataset::mutate(&b, 11)?;
    assert_eq!(done, done_b);
    let after = dataset::manifest(&a)?;
    after.ensure_same(&dataset::manifest(&b)?)?;

    let diff = before.diff(&after);
    let small_count = before
        .entries()
        .keys()
        .filter(|p| p.starts_with("small/"))
        .count();

    // Edits in place: the large file keeps its size; one medium file grows by the 4 KiB
    // insert, another by the 1 MiB append.
    assert_eq!(done.overwritten.len(), 4);
    let changed: Vec<&str> = diff.changed.iter().map(|(p, _, _)| p.as_str()).collect();
    let inserted = done.inserted.as_deref().unwrap();
    let appended = done.appended.as_deref().unwrap();
    assert_eq!(inserted, "medium/m01.bin");
    assert_eq!(appended, "medium/m02.bin");
    assert_eq!(
        changed.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(["large/disk.img", inserted, appended]),
        "{diff}"
    );
    let grown = |path: &str| after.get(path).unwrap().size - before.get(path).unwrap().size;
    assert_eq!(grown("large/disk.img"), 0);
    assert_eq!(grown(inserted), 4096);
    assert_eq!(grown(appended), 1 << 20);
    // 1 % of the small files deleted, as many added under added/.
    assert_eq!(done.deleted.len(), small_count / 100);
    assert!(!done.deleted.is_empty());
    assert_eq!(done.added.len(), (small_count / 100).max(1));
    assert!(done.added.iter().all(|p| p.starts_with("added/")));
    let added: BTreeSet<&str> = diff.added.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(added, done.added.iter().map(String::as_str).collect());

    // The first small directory renamed: its files show up as renames, not edits.
    assert_eq!(
        done.renamed,
        Some(("small/d00".to_owned(), "small/d00-renamed".to_owned()))
    );
    assert!(!diff.renamed.is_empty());
    assert!(diff.renamed.iter().all(|(from, to)| {
        from.starts_with("small/d00/")
            && to == &from.replacen("small/d00/", "small/d00-renamed/", 1)
    }));
    let removed: BTreeSet<&str> = diff.removed.iter().map(|(p, _)| p.as_str()).collect();
    let deleted: BTreeSet<&str> = done.deleted.iter().map(String::as_str).collect();
    assert_eq!(removed, deleted, "{diff}");
    let in_d00 = before
        .entries()
        .keys()
        .filter(|p| p.starts_with("small/d00/"))
        .count();
    let deleted_in_d00 = deleted
        .iter()
        .filter(|p| p.starts_with("small/d00/"))
        .count();
    assert_eq!(diff.renamed.len(), in_d00 - deleted_in_d00);

    // A second mutation with another seed changes things again.
    dataset::mutate(&b, 12)?;
    assert!(!after.diff(&dataset::manifest(&b)?).is_empty());
    Ok(())
}

#[test]
fn an_insert_shifts_the_rest_of_the_file() -> TestResult {
    let tmp = tempfile::tempdir()?;
    mixed(tmp.path(), 6)?;
    let path = tmp.path().join("medium/m01.bin");
    let original = std::fs::read(&path)?;
    dataset::mutate(tmp.path(), 1)?;
    let mutated = std::fs::read(&path)?;
    let cut = original.len() / 3;
    assert_eq!(mutated.len(), original.len() + 4096);
    assert_eq!(&mutated[..cut], &original[..cut]);
    assert_eq!(&mutated[cut + 4096..], &original[cut..]);
    assert_ne!(&mutated[cut..cut + 4096], &original[cut..cut + 4096]);
    Ok(())
}
