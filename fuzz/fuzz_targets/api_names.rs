//! Name expressions of the REST API (`api/src/names.rs`): date math (`<nightly-{now/d}>`),
//! wildcard matching and `a,b*,-c` resolution, index and snapshot name validation.
//!
//! Input: `[selector][expression length][expression][names, comma-separated]`.
//!
//! Properties: no panic and no allocation above the cap; a resolved expression only selects
//! names from the list given, each once; `*` matches everything; a name without `*` matches
//! exactly itself.
#![no_main]

use chrono::{TimeZone, Utc};
use coffer_api::names;
use coffer_api::params::split_list;
use coffer_fuzz::{CappedAlloc, Input};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let selector = input.byte();
    let expr = String::from_utf8_lossy(input.short()).into_owned();
    let rest = String::from_utf8_lossy(input.rest()).into_owned();

    // A few instants, edges of chrono's range included.
    let now = match selector % 4 {
        0 => Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap(),
        1 => Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
        2 => chrono::DateTime::<Utc>::MAX_UTC,
        _ => chrono::DateTime::<Utc>::MIN_UTC,
    };
    if let Ok(resolved) = names::resolve_date_math(&expr, now) {
        let _ = names::validate_index_name(&resolved);
        let _ = names::validate_snapshot_name("fuzz", &resolved);
    }
    let _ = names::validate_index_name(&expr);
    let _ = names::validate_snapshot_name("fuzz", &expr);

    // Bound the quadratic matcher's work, as request size limits bound it in the service.
    // Index and snapshot names are unique, as the resolver assumes.
    let mut candidates: Vec<String> = Vec::new();
    for name in rest.split(',').take(64) {
        if !candidates.iter().any(|c| c == name) {
            candidates.push(name.to_owned());
        }
    }
    let items = split_list(&expr);
    let (selected, missing) = names::resolve(&items, candidates.iter().map(String::as_str));
    for s in &selected {
        assert!(candidates.contains(s), "{s} was not offered");
        assert_eq!(selected.iter().filter(|x| *x == s).count(), 1, "{s} twice");
    }
    for m in &missing {
        assert!(items.contains(m));
    }
    for c in &candidates {
        assert!(names::simple_match("*", c));
        assert!(names::simple_match(
            c.replace('*', "").as_str(),
            &c.replace('*', "")
        ));
        let _ = names::simple_match(&expr, c);
    }
});
