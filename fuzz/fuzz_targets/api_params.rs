//! The REST API's request parsing (`api/src/params.rs`, `api/src/repo_settings.rs`): query
//! strings, JSON bodies read field by field as the create/restore/clone snapshot, put
//! repository and create index handlers read them, list splitting and repository settings.
//!
//! Input: `[selector][query length][query][body]`.
//!
//! Properties: every request is `Ok` or an Elasticsearch error with a 4xx/5xx status,
//! never a panic or an allocation above the cap.
#![no_main]

use std::collections::BTreeMap;

use coffer_api::params::{self, Body, Params};
use coffer_api::repo_settings;
use coffer_fuzz::{CappedAlloc, Input};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

/// Body fields as the handlers take them: (name, how).
const FIELDS: &[(&str, u8)] = &[
    ("indices", 2),
    ("ignore_unavailable", 1),
    ("include_global_state", 1),
    ("partial", 1),
    ("metadata", 3),
    ("feature_states", 2),
    ("rename_pattern", 0),
    ("rename_replacement", 0),
    ("index_settings", 3),
    ("ignore_index_settings", 2),
    ("include_aliases", 1),
    ("type", 0),
    ("settings", 3),
    ("secure_settings_password", 0),
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let selector = input.byte();
    let query = String::from_utf8_lossy(input.short()).into_owned();
    let body = input.rest();

    let p = Params::parse("/_snapshot/fuzz/snap", &query);
    let _ = p.check(&["wait_for_completion", "master_timeout", "verify", "size"]);
    for key in [
        "wait_for_completion",
        "verify",
        "pretty",
        "size",
        "from",
        "offset",
    ] {
        let _ = p.bool(key, selector & 1 == 0);
        let _ = p.u64(key);
        let _ = p.i64(key);
        if let Some(v) = p.get(key) {
            let _ = params::parse_bool(key, v);
            let _ = params::split_list(v);
            let _ = repo_settings::parse_byte_size(key, v);
        }
    }

    let Ok(mut b) = Body::parse("fuzz", body) else {
        return;
    };
    // Take the fields in an order the selector picks, as different handlers do.
    let start = usize::from(selector) % FIELDS.len();
    for (name, how) in FIELDS.iter().cycle().skip(start).take(FIELDS.len()) {
        match how {
            0 => drop(b.string(name)),
            1 => drop(b.bool(name)),
            2 => drop(b.string_list(name)),
            _ => {
                if let Ok(Some(map)) = b.object(name) {
                    // A repository's `settings` object, as put-repository flattens it.
                    let settings: BTreeMap<String, String> = map
                        .iter()
                        .map(|(k, v)| {
                            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            (k.clone(), text)
                        })
                        .collect();
                    let kind = if selector & 2 == 0 { "fs" } else { "s3" };
                    let _ = repo_settings::parse(kind, &settings);
                }
            }
        }
    }
    if let Err(e) = b.finish() {
        assert!(e.status.is_client_error() || e.status.is_server_error());
    }
});
