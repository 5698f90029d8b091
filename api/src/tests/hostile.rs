//! Hostile input through the router: `fs` locations that try to leave `path.repo`, names
//! and `rename_replacement`s that are paths, a crafted repository whose root names an index
//! `../../x`, bodies nested beyond any sane depth, and abusive query parameters. Each case
//! checks the answer and that nothing was written where it must not be.

use std::path::Path;

use coffer_repository::envelope::{self, Kind};
use coffer_repository::layout;
use coffer_repository::model::RepositoryData;

use super::*;

/// Every entry under `dir`, recursively, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Registers fs repository `r`, creates index `idx` with one document, snapshots it as `s1`.
async fn repository_with_a_snapshot(st: &AppState) {
    fs_repository_and_index(st, "idx").await;
    let (s, b) = call(
        st,
        "PUT",
        "/_snapshot/r/s1?wait_for_completion=true",
        Some(json!({"indices": "idx"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn fs_locations_stay_under_path_repo() {
    let h = harness();
    let st = &h.state;
    let outside = h.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // A symlink inside path.repo to a directory outside, and one to a path that does not
    // exist yet (the store would create it).
    std::os::unix::fs::symlink(&outside, h.repo_root.join("evil")).unwrap();
    std::os::unix::fs::symlink(outside.join("new"), h.repo_root.join("dangling")).unwrap();
    let outside_abs = outside.display().to_string();
    let climbing_abs = format!("{}/../outside", h.repo_root.display());
    for location in [
        "../outside",
        "sub/../../outside",
        "evil",
        "evil/sub",
        "dangling",
        "dangling/sub",
        outside_abs.as_str(),
        climbing_abs.as_str(),
        "/etc",
    ] {
        for verify in ["true", "false"] {
            let (s, b) = call(
                st,
                "PUT",
                &format!("/_snapshot/bad?verify={verify}"),
                Some(json!({"type": "fs", "settings": {"location": location}})),
            )
            .await;
            assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{location}: {b}");
            assert_eq!(
                b["error"]["type"], "repository_exception",
                "{location}: {b}"
            );
            assert!(
                b["error"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("doesn't match any of the locations specified by path.repo"),
                "{location}: {b}"
            );
        }
    }
    assert_eq!(
        call(st, "GET", "/_snapshot/bad", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(tree(&outside).is_empty(), "wrote {:?}", tree(&outside));
    // What stays inside is accepted: a symlink between directories of path.repo, an
    // absolute path under it, and a path.repo that is itself reached through a symlink.
    std::fs::create_dir_all(h.repo_root.join("real")).unwrap();
    std::os::unix::fs::symlink(h.repo_root.join("real"), h.repo_root.join("alias")).unwrap();
    let inside_abs = h.repo_root.join("abs").display().to_string();
    for (name, location) in [("a1", "alias/x"), ("a2", inside_abs.as_str())] {
        let (s, b) = call(
            st,
            "PUT",
            &format!("/_snapshot/{name}"),
            Some(json!({"type": "fs", "settings": {"location": location}})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{location}: {b}");
    }
    assert!(h.repo_root.join("real/x").is_dir());
}

#[tokio::test]
async fn rename_replacement_cannot_leave_the_data_directory() {
    let h = harness();
    let st = &h.state;
    repository_with_a_snapshot(st).await;
    let before = tree(h.dir.path());
    for (pattern, replacement) in [
        ("idx", "../escaped"),
        ("idx", "../../escaped"),
        ("idx", "/tmp/coffer-escaped"),
        ("idx", "a/../../escaped"),
        ("idx", ".."),
        ("idx", "."),
        ("idx", ""),
        ("idx", "_hidden"),
        ("idx", "-dash"),
        ("idx", "UPPER"),
        ("idx", "back\\slash"),
        ("idx", "with space"),
        ("idx", "nul\u{0}byte"),
        // A replacement built from the source name by the pattern's groups.
        ("(i)dx", "../$1"),
        ("(.*)", "/$1"),
    ] {
        let (s, b) = call(
            st,
            "POST",
            "/_snapshot/r/s1/_restore?wait_for_completion=true",
            Some(json!({"indices": "idx", "rename_pattern": pattern, "rename_replacement": replacement})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{replacement:?}: {b}");
        assert_eq!(
            b["error"]["type"], "invalid_index_name_exception",
            "{replacement:?}: {b}"
        );
    }
    assert_eq!(
        tree(h.dir.path()),
        before,
        "a refused restore wrote something"
    );
    assert!(!Path::new("/tmp/coffer-escaped").exists());
}

/// A repository whose root (written by someone else with access to the bucket or the
/// directory) names an index `../../escaped`: restoring it under its own name is refused
/// like any invalid name, and nothing is written.
#[tokio::test]
async fn a_crafted_index_name_in_the_repository_is_refused_at_restore() {
    let h = harness();
    let st = &h.state;
    repository_with_a_snapshot(st).await;
    let repo_dir = h.repo_root.join("r");
    let generation = std::fs::read_dir(&repo_dir)
        .unwrap()
        .filter_map(|e| layout::parse_root(&e.ok()?.file_name().to_string_lossy()))
        .max()
        .unwrap();
    let key = layout::root(generation);
    let bytes = std::fs::read(repo_dir.join(&key)).unwrap();
    let mut root: RepositoryData = envelope::decode(&key, Kind::Root, &bytes).unwrap();
    let entry = root.indices.remove("idx").unwrap();
    let crafted = "../../escaped";
    root.indices.insert(crafted.to_owned(), entry);
    for s in &mut root.snapshots {
        s.indices = vec![crafted.to_owned()];
    }
    std::fs::write(
        repo_dir.join(&key),
        envelope::encode(Kind::Root, &root).unwrap(),
    )
    .unwrap();
    let before = tree(h.dir.path());
    for body in [
        None,
        Some(json!({"indices": "*"})),
        Some(json!({"indices": crafted})),
    ] {
        let (s, b) = call(
            st,
            "POST",
            "/_snapshot/r/s1/_restore?wait_for_completion=true",
            body.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body:?}: {b}");
        assert_eq!(
            b["error"]["type"], "invalid_index_name_exception",
            "{body:?}: {b}"
        );
    }
    assert_eq!(
        tree(h.dir.path()),
        before,
        "a refused restore wrote something"
    );
    assert!(!h.dir.path().join("escaped").exists());
    // Renamed to a valid name, the same snapshot restores.
    let (s, b) = call(
        st,
        "POST",
        "/_snapshot/r/s1/_restore?wait_for_completion=true",
        Some(json!({"rename_pattern": ".*", "rename_replacement": "rescued"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = call(st, "GET", "/rescued/_doc/1", None).await;
    assert_eq!(b["_source"], json!({"a": 1}));
}

/// serde_json's recursion limit (128) applies to every body: a body nested 10,000 deep is
/// a 400 parse error, not a stack overflow that would abort the process.
#[tokio::test]
async fn deeply_nested_bodies_are_parse_errors() {
    const DEPTH: usize = 10_000;
    let h = harness();
    let st = &h.state;
    repository_with_a_snapshot(st).await;
    let arrays = "[".repeat(DEPTH) + &"]".repeat(DEPTH);
    let objects = r#"{"a":"#.repeat(DEPTH) + "1" + &"}".repeat(DEPTH);
    let in_a_field = format!(r#"{{"settings": {objects}}}"#);
    for (method, uri) in [
        ("PUT", "/_snapshot/r2"),
        ("POST", "/_snapshot/r2"),
        ("PUT", "/_snapshot/r/s2"),
        ("POST", "/_snapshot/r/s1/_restore"),
        ("PUT", "/_snapshot/r/s1/_clone/c1"),
        ("PUT", "/other"),
        ("PUT", "/idx/_doc/2"),
        ("POST", "/idx/_doc"),
        ("POST", "/_nodes/reload_secure_settings"),
    ] {
        for body in [&arrays, &objects, &in_a_field] {
            let (s, bytes) = call_raw(st, method, uri, Some(body.clone())).await;
            let b: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {uri}: {b}");
            assert_eq!(
                b["error"]["type"], "x_content_parse_exception",
                "{method} {uri}: {b}"
            );
            assert!(
                b["error"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("recursion limit exceeded"),
                "{method} {uri}: {b}"
            );
        }
    }
    // Nothing was created by the refused requests.
    assert_eq!(
        call(st, "GET", "/_snapshot/r2", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(st, "HEAD", "/other", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, b) = call(st, "GET", "/idx/_count", None).await;
    assert_eq!(b["count"], 1);
}

/// Query parameters a client controls: numbers out of range, bad booleans, garbage
/// pagination tokens, date math that overflows, and a `filter_path` built to explode.
/// Each is a 400 (or an answer), never a panic, a 500 or a hang.
#[tokio::test]
async fn abusive_query_parameters_are_refused_or_harmless() {
    let h = harness();
    let st = &h.state;
    repository_with_a_snapshot(st).await;
    for uri in [
        "/_snapshot/r/_all?size=99999999999999999999999",
        "/_snapshot/r/_all?offset=-1",
        "/_snapshot/r/_all?after=%FF%FE",
        "/_snapshot/r/_all?after=bm90LWEtdG9rZW4",
        "/_snapshot/r/_all?verbose=maybe",
        "/_snapshot/r/_all?bogus=1&bogus2=2",
        "/_snapshot/r?local=%00",
    ] {
        let (s, b) = call(st, "GET", uri, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {b}");
        assert_eq!(b["status"], 400, "{uri}: {b}");
    }
    for uri in [
        "/_snapshot/r/_all?offset=18446744073709551615",
        "/_snapshot/r/_all?size=9223372036854775807",
        "/_snapshot/r/_all?size=-1&pretty&pretty=true",
    ] {
        let (s, b) = call(st, "GET", uri, None).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {b}");
    }
    // Date math with amounts that overflow the calendar.
    for name in [
        "%3Cs-%7Bnow%2B9999999999999999d%7D%3E",
        "%3Cs-%7Bnow%2B2147483000y%7D%3E",
        "%3Cs-%7Bnow%2B9223372036854775807M%7D%3E",
    ] {
        let (s, b) = call(
            st,
            "PUT",
            &format!("/_snapshot/r/{name}?wait_for_completion=true"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name}: {b}");
        assert_eq!(b["error"]["type"], "invalid_snapshot_name_exception", "{b}");
    }
    // 20,000 `**` in filter_path (the longest URI the http crate takes is 64 KiB): linear work, no recursion per `**`.
    let spec = vec!["**"; 20_000].join(".") + ".snapshot";
    let started = std::time::Instant::now();
    let (s, b) = call(
        st,
        "GET",
        &format!("/_snapshot/r/_all?filter_path={spec}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"snapshots": [{"snapshot": "s1"}]}));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "filter_path took {:?}",
        started.elapsed()
    );
}
