//! Assertion semantics of Elasticsearch's YAML runner: `match` with values, regexes and
//! numeric equivalence, `is_true` / `is_false` on Java string forms, `length`, ordering
//! comparisons, `contains`, `close_to`, and `catch`.

use regex::Regex;
use serde_json::Value;

use crate::suite::CompareOp;
use crate::value::{java_string, show};

/// If `expected` is a `/regex/` (after trimming, as Elasticsearch does), its pattern.
pub fn regex_literal(expected: &Value) -> Option<&str> {
    let s = expected.as_str()?.trim();
    (s.len() > 2 && s.starts_with('/') && s.ends_with('/')).then(|| &s[1..s.len() - 1])
}

/// Compiles a Java regex into a Rust one. `comments` is Java's `Pattern.COMMENTS` (verbose
/// mode: whitespace and `#` comments ignored), which `match` uses. Java's `$` and `\Z` also
/// match before a final line terminator; Rust's do not, so they are rewritten to accept one.
/// Constructs Rust lacks (possessive quantifiers, lookaround) fail to compile and are reported.
pub fn java_regex(pattern: &str, comments: bool) -> Result<Regex, String> {
    const END: &str = r"(?:\r?\n|\r)?\z";
    let mut out = String::with_capacity(pattern.len() + 16);
    if comments {
        out.push_str("(?x)");
    }
    let mut class_depth = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if class_depth == 0 => out.push_str(END),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' => {
                class_depth += 1;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal in both dialects.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            '$' if class_depth == 0 => out.push_str(END),
            // A verbose-mode comment runs to the end of the line and is copied untouched, so
            // brackets or dollars in it change nothing.
            '#' if comments && class_depth == 0 => {
                out.push('#');
                for next in chars.by_ref() {
                    out.push(next);
                    if next == '\n' {
                        break;
                    }
                }
            }
            other => out.push(other),
        }
    }
    Regex::new(&out).map_err(|e| format!("regex [{pattern}] does not compile: {e}"))
}

/// Deep equality where numbers compare by value (`1` equals `1.0`), as the Java runner does
/// for numbers of different classes.
pub fn values_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => {
            // Exact equality is intended: 1 and 1.0 are the same number, 1.0 and 1.0000001 not.
            #[allow(clippy::float_cmp)]
            let same = matches!((l.as_f64(), r.as_f64()), (Some(p), Some(q)) if p == q);
            l == r || same
        }
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(p, q)| values_equal(p, q))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(k, v)| r.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => left == right,
    }
}

/// Where `actual` differs from `expected`, one line per difference, with field paths.
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(expected, actual, "", &mut out);
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn diff_into(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    let here = if at.is_empty() { "(root)" } else { at };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => diff_into(ev, av, &join(at, k), out),
                    None => out.push(format!(
                        "  {}: expected {} but was missing",
                        join(at, k),
                        show(ev)
                    )),
                }
            }
            for (k, av) in a {
                if !e.contains_key(k) {
                    out.push(format!(
                        "  {}: unexpected field with value {}",
                        join(at, k),
                        show(av)
                    ));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff_into(ev, av, &join(at, &i.to_string()), out);
            }
            if e.len() != a.len() {
                out.push(format!(
                    "  {here}: expected {} elements but there are {}",
                    e.len(),
                    a.len()
                ));
            }
        }
        _ => {
            if !values_equal(expected, actual) {
                out.push(format!(
                    "  {here}: expected {} but was {}",
                    show(expected),
                    show(actual)
                ));
            }
        }
    }
}

/// `match`: `expected` (stash already applied) against the value found at the path.
pub fn check_match(actual: Option<&Value>, expected: &Value) -> Result<(), String> {
    if let Some(pattern) = regex_literal(expected) {
        let Some(Value::String(text)) = actual else {
            return Err(format!(
                "expected a string matching /{pattern}/ but was {}",
                actual.map_or_else(|| "missing".to_owned(), show)
            ));
        };
        let re = java_regex(pattern, true)?;
        return if re.is_match(text) {
            Ok(())
        } else {
            Err(format!(
                "{} does not match /{pattern}/",
                show(&Value::String(text.clone()))
            ))
        };
    }
    let actual = actual.unwrap_or(&Value::Null);
    if values_equal(actual, expected) {
        return Ok(());
    }
    let mut message = format!("expected {} but was {}", show(expected), show(actual));
    if expected.is_object() || expected.is_array() {
        let lines = diff(expected, actual);
        if !lines.is_empty() {
            message.push_str("\n  differences:\n");
            message.push_str(&lines.join("\n"));
        }
    }
    Err(message)
}

/// `is_true`: present, and its Java string form is not empty, `false` or `0` (so an empty list
/// is true, as in Elasticsearch).
pub fn is_true(actual: Option<&Value>) -> bool {
    match actual {
        None | Some(Value::Null) => false,
        Some(v) => {
            let s = java_string(v);
            !(s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0")
        }
    }
}

/// `is_false`: missing, or its Java string form is empty, `false` or `0`.
pub fn is_false(actual: Option<&Value>) -> bool {
    match actual {
        None | Some(Value::Null) => true,
        Some(v) => {
            let s = java_string(v);
            s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0"
        }
    }
}

/// `length`: of a list, an object (entries) or a string (characters).
pub fn check_length(actual: Option<&Value>, expected: &Value) -> Result<(), String> {
    let want = expected
        .as_u64()
        .or_else(|| expected.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("expected length {} is not a number", show(expected)))?;
    let got = match actual {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(o)) => o.len(),
        Some(Value::String(s)) => s.chars().count(),
        other => {
            return Err(format!(
                "expected something with a length but was {}",
                other.map_or_else(|| "missing".to_owned(), show)
            ));
        }
    };
    if u64::try_from(got).ok() == Some(want) {
        Ok(())
    } else {
        Err(format!("expected length {want} but was {got}"))
    }
}

/// `gt`, `gte`, `lt`, `lte`: numbers by value, strings lexicographically.
pub fn check_compare(
    op: CompareOp,
    actual: Option<&Value>,
    expected: &Value,
) -> Result<(), String> {
    let ordering = match (actual, expected) {
        (Some(Value::Number(a)), Value::Number(e)) => {
            let (a, e) = (
                a.as_f64().unwrap_or(f64::NAN),
                e.as_f64().unwrap_or(f64::NAN),
            );
            a.partial_cmp(&e)
        }
        (Some(Value::String(a)), Value::String(e)) => Some(a.cmp(e)),
        (other, _) => {
            return Err(format!(
                "cannot compare {} with {}",
                other.map_or_else(|| "missing".to_owned(), show),
                show(expected)
            ));
        }
    };
    let ok = match (op, ordering) {
        (_, None) => false,
        (CompareOp::Gt, Some(o)) => o.is_gt(),
        (CompareOp::Gte, Some(o)) => o.is_ge(),
        (CompareOp::Lt, Some(o)) => o.is_lt(),
        (CompareOp::Lte, Some(o)) => o.is_le(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a value {} {} but was {}",
            op.keyword(),
            show(expected),
            actual.map_or_else(|| "missing".to_owned(), show)
        ))
    }
}

/// `contains`: the list holds the value; for an object, an element holding at least its
/// fields.
pub fn check_contains(actual: Option<&Value>, expected: &Value) -> Result<(), String> {
    let Some(Value::Array(items)) = actual else {
        return Err(format!(
            "expected a list but was {}",
            actual.map_or_else(|| "missing".to_owned(), show)
        ));
    };
    let found = items.iter().any(|item| match (expected, item) {
        (Value::Object(e), Value::Object(i)) => e
            .iter()
            .all(|(k, v)| i.get(k).is_some_and(|w| values_equal(v, w))),
        _ => values_equal(item, expected),
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "{} does not contain {}",
            show(&Value::Array(items.clone())),
            show(expected)
        ))
    }
}

/// `close_to`: a number within `error` of `value`.
pub fn check_close_to(actual: Option<&Value>, value: f64, error: f64) -> Result<(), String> {
    match actual.and_then(Value::as_f64) {
        Some(a) if (a - value).abs() <= error => Ok(()),
        _ => Err(format!(
            "expected a number within {error} of {value} but was {}",
            actual.map_or_else(|| "missing".to_owned(), show)
        )),
    }
}

/// Whether a status satisfies a named `catch`. `None` for an unknown name.
pub fn catch_status_matches(name: &str, status: u16) -> Option<bool> {
    Some(match name {
        "bad_request" => status == 400,
        "unauthorized" => status == 401,
        "forbidden" => status == 403,
        "missing" => status == 404,
        "request_timeout" => status == 408,
        "conflict" => status == 409,
        "unavailable" => status == 503,
        // Any other error status: what none of the names above covers.
        "request" => status >= 400 && ![400, 401, 403, 404, 408, 409].contains(&status),
        _ => return None,
    })
}

/// Checks a `catch` against an HTTP answer. `error` is the Java string form of the body's
/// `error` field, keys in document order (see [`crate::value::java_string_of_field`]).
pub fn check_catch(catch: &str, status: u16, error: Option<&str>) -> Result<(), String> {
    if status < 400 {
        return Err(format!(
            "expected an error ({catch}) but the status was {status}"
        ));
    }
    if let Some(pattern) = regex_literal(&Value::String(catch.to_owned())) {
        let Some(text) = error else {
            return Err(format!(
                "expected an `error` in the response (status {status})"
            ));
        };
        // Elasticsearch matches against the Java string of the `error` object, without
        // verbose mode.
        let re = java_regex(pattern, false)?;
        return if re.is_match(text) {
            Ok(())
        } else {
            Err(format!("the error [{text}] does not match /{pattern}/"))
        };
    }
    match catch_status_matches(catch, status) {
        Some(true) => Ok(()),
        Some(false) => Err(format!("expected {catch} but the status was {status}")),
        None => Err(format!("unknown catch [{catch}]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verbose_regexes_as_in_the_cat_tests() {
        let expected =
            json!("/^   test_cat_repo_1\\s+ fs\\s*\\n\n     test_cat_repo_2\\s+ fs\\s*\\n\n$/\n");
        let body = json!("test_cat_repo_1 fs\ntest_cat_repo_2 fs\n");
        check_match(Some(&body), &expected).unwrap();
        let wrong = json!("test_cat_repo_2 fs\ntest_cat_repo_1 fs\n");
        assert!(check_match(Some(&wrong), &expected).is_err());
        // `\:` escapes and `\d` classes from the cat.snapshots test.
        let snap = json!(
            "/^ snap1\\s+ repo\\s+ SUCCESS\\s+ \\d+\\s+ \\d\\d\\:\\d\\d\\:\\d\\d\\s+ \\S+\\s*\\n $/"
        );
        check_match(Some(&json!("snap1 repo SUCCESS 17 10:11:12 5ms\n")), &snap).unwrap();
        // Java's `$` accepts a final newline.
        check_match(Some(&json!("")), &json!("/^$/\n")).unwrap();
        check_match(Some(&json!("\n")), &json!("/^$/")).unwrap();
        assert!(check_match(Some(&json!("x\n")), &json!("/^$/")).is_err());
        // Comments are ignored in verbose mode, brackets and dollars in them included.
        check_match(Some(&json!("ab")), &json!("/a # the [a$\n b$/")).unwrap();
        // A regex needs a string.
        assert!(check_match(Some(&json!(1)), &json!("/1/")).is_err());
        // Alternation across lines, as in the reload_secure_settings test.
        let re = json!(
            "/^(Provided\\skeystore\\spassword\\swas\\sincorrect| Keystore\\shas\\sbeen\\scorrupted\\sor\\stampered\\swith)$/"
        );
        check_match(
            Some(&json!("Provided keystore password was incorrect")),
            &re,
        )
        .unwrap();
    }

    #[test]
    fn character_classes_keep_dollars() {
        let re = java_regex("^[$]+$", false).unwrap();
        assert!(re.is_match("$$"));
        let re = java_regex("^[]a]$", false).unwrap();
        assert!(re.is_match("]"));
    }

    #[test]
    fn values_match_with_numeric_equivalence() {
        check_match(Some(&json!(1)), &json!(1.0)).unwrap();
        check_match(Some(&json!("SUCCESS")), &json!("SUCCESS")).unwrap();
        check_match(None, &json!(null)).unwrap();
        assert!(check_match(Some(&json!("1")), &json!(1)).is_err());
        assert!(check_match(None, &json!(0)).is_err());
        let err = check_match(
            Some(&json!({"a": 1, "b": [1, 2], "c": 3})),
            &json!({"a": 2, "b": [1]}),
        )
        .unwrap_err();
        assert!(err.contains("a: expected 2 but was 1"), "{err}");
        assert!(
            err.contains("b: expected 1 elements but there are 2"),
            "{err}"
        );
        assert!(err.contains("c: unexpected field"), "{err}");
    }

    #[test]
    fn truthiness_follows_java_strings() {
        assert!(is_true(Some(&json!([]))));
        assert!(is_true(Some(&json!({}))));
        assert!(is_true(Some(&json!("x"))));
        assert!(!is_true(Some(&json!(""))));
        assert!(!is_true(Some(&json!(false))));
        assert!(!is_true(Some(&json!("FALSE"))));
        assert!(!is_true(Some(&json!(0))));
        assert!(!is_true(None));
        assert!(is_false(None));
        assert!(is_false(Some(&json!(0))));
        assert!(!is_false(Some(&json!([]))));
        assert!(!is_false(Some(&json!(0.0))));
    }

    #[test]
    fn lengths_comparisons_contains_close_to() {
        check_length(Some(&json!([1, 2])), &json!(2)).unwrap();
        check_length(Some(&json!({"a": 1})), &json!(1)).unwrap();
        check_length(Some(&json!("abc")), &json!(3)).unwrap();
        assert!(check_length(Some(&json!([])), &json!(1)).is_err());
        assert!(check_length(None, &json!(0)).is_err());
        check_compare(CompareOp::Gt, Some(&json!(2)), &json!(1)).unwrap();
        check_compare(CompareOp::Gte, Some(&json!(0)), &json!(0)).unwrap();
        assert!(check_compare(CompareOp::Gt, Some(&json!(0)), &json!(0)).is_err());
        check_compare(CompareOp::Lt, Some(&json!(1.5)), &json!(2)).unwrap();
        check_compare(CompareOp::Lte, Some(&json!("a")), &json!("b")).unwrap();
        assert!(check_compare(CompareOp::Gt, None, &json!(0)).is_err());
        assert!(check_compare(CompareOp::Gt, Some(&json!("1")), &json!(0)).is_err());
        check_contains(Some(&json!([1, "x"])), &json!("x")).unwrap();
        check_contains(Some(&json!([{"a": 1, "b": 2}])), &json!({"a": 1})).unwrap();
        assert!(check_contains(Some(&json!([{"a": 2}])), &json!({"a": 1})).is_err());
        check_close_to(Some(&json!(1.04)), 1.0, 0.05).unwrap();
        assert!(check_close_to(Some(&json!(1.2)), 1.0, 0.05).is_err());
    }

    #[test]
    fn catches() {
        let body = br#"{"error": {"root_cause": [{"type": "snapshot_missing_exception",
            "reason": "[r:s] is missing"}], "type": "snapshot_missing_exception",
            "reason": "[r:s] is missing"}, "status": 404}"#;
        let err = crate::value::java_string_of_field(body, "error");
        let err = err.as_deref();
        check_catch("missing", 404, err).unwrap();
        check_catch("/snapshot_missing_exception.+ is missing/", 404, err).unwrap();
        assert!(check_catch("/repository_missing/", 404, err).is_err());
        assert!(check_catch("missing", 200, None).is_err());
        assert!(check_catch("missing", 400, None).is_err());
        check_catch("request", 500, None).unwrap();
        assert!(check_catch("request", 404, None).is_err());
        check_catch("bad_request", 400, None).unwrap();
        check_catch("conflict", 409, None).unwrap();
        check_catch("unauthorized", 401, None).unwrap();
        check_catch("forbidden", 403, None).unwrap();
        assert!(check_catch("nonsense", 400, None).is_err());
        assert!(check_catch("/x/", 500, None).is_err());
    }
}
