//! Properties of the REST API's request parsing (docs/fuzzing.md), run by `cargo test` on
//! every CI run beside the cargo-fuzz targets `api_params` and `api_names`: query strings,
//! JSON bodies, repository settings and name expressions never panic, and the wildcard
//! resolver only selects what it was offered.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use coffer_api::names;
use coffer_api::params::{Body, Params, split_list};
use coffer_api::repo_settings;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

fn date_math() -> impl Strategy<Value = String> {
    let step = prop_oneof![
        "[+-][0-9]{0,20}[yMwdhHms%x]",
        "/[yMwdhHmsq]",
        Just("{yyyy.MM.dd}".to_owned()),
        Just("{%Q%%}".to_owned()),
        Just("{HH|Europe/Paris}".to_owned()),
    ];
    (vec(step, 0..4), "[a-z{}<>\\\\-]{0,6}", any::<bool>()).prop_map(|(steps, lit, wrap)| {
        let inner = format!("{lit}{{now{}}}", steps.concat());
        if wrap { format!("<{inner}>") } else { inner }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn date_math_never_panics(expr in date_math(), any_text in "\\PC{0,24}", which in 0u8..4) {
        let now = match which {
            0 => Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap(),
            1 => Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            2 => chrono::DateTime::<Utc>::MAX_UTC,
            _ => chrono::DateTime::<Utc>::MIN_UTC,
        };
        let _ = names::resolve_date_math(&expr, now);
        let _ = names::resolve_date_math(&format!("<{any_text}>"), now);
        let _ = names::validate_index_name(&any_text);
        let _ = names::validate_snapshot_name("r", &any_text);
    }

    #[test]
    fn resolution_selects_only_offered_names_once(
        expr in "[a-c*,_ -]{0,16}",
        offered in proptest::collection::btree_set("[a-c*_-]{0,4}", 0..8),
    ) {
        // Index and snapshot names are unique, as the resolver assumes.
        let offered: Vec<String> = offered.into_iter().collect();
        let items = split_list(&expr);
        let (selected, missing) = names::resolve(&items, offered.iter().map(String::as_str));
        for s in &selected {
            prop_assert!(offered.contains(s));
            prop_assert_eq!(selected.iter().filter(|x| *x == s).count(), 1);
        }
        for m in &missing {
            prop_assert!(items.contains(m));
        }
        for o in &offered {
            prop_assert!(names::simple_match("*", o));
            let plain = o.replace('*', "");
            prop_assert!(names::simple_match(&plain, &plain));
        }
    }

    #[test]
    fn query_strings_and_bodies_never_panic(
        query in "[a-z_=&%0-9+.-]{0,40}",
        body in vec(any::<u8>(), 0..200),
        json in btree_map("[a-z_]{1,12}", "\\PC{0,12}", 0..6),
    ) {
        let p = Params::parse("/_snapshot/r/s", &query);
        let _ = p.check(&["wait_for_completion"]);
        for key in ["wait_for_completion", "size", "verify"] {
            let _ = p.bool(key, false);
            let _ = p.u64(key);
            let _ = p.i64(key);
        }
        let _ = Body::parse("t", &body);
        let text = serde_json::to_vec(&json).unwrap();
        let mut b = Body::parse("t", &text).unwrap();
        let _ = b.string_list("indices");
        let _ = b.bool("partial");
        let _ = b.object("metadata");
        let _ = b.finish();
        let _ = repo_settings::parse("fs", &json);
        let _ = repo_settings::parse("s3", &json);
        for v in json.values() {
            let _ = repo_settings::parse_byte_size("chunk_size", v);
        }
        let _: &BTreeMap<String, String> = &json;
    }

    #[test]
    fn byte_sizes_never_panic(
        number in "-?[0-9]{0,22}(\\.[0-9]{0,4})?(e[0-9]{1,3})?",
        unit in "(pb|tb|gb|mb|kb|p|t|g|m|k|b|)",
    ) {
        let _ = repo_settings::parse_byte_size("chunk_size", &format!("{number}{unit}"));
    }
}
