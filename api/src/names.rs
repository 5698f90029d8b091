//! Names and name expressions with Elasticsearch's rules: index and snapshot name
//! validation, date math (`<nightly-{now/d}>`), and resolving `a,b*,-c` / `_all` lists.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

use crate::error::{ApiResult, EsError};

/// `*` matches any run of characters (Elasticsearch's `Regex.simpleMatch`).
pub fn simple_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // Iterative glob with backtracking to the last star: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether an expression item is a pattern rather than a name.
pub fn is_pattern(s: &str) -> bool {
    s.contains('*')
}

/// Resolves a list such as `a,b*,-c` (or `_all`/`*`/empty for everything) against `names`,
/// in the order of `names`. Returns the matches and the concrete (non-wildcard) names that
/// matched nothing.
pub fn resolve<'a>(
    items: &[String],
    names: impl IntoIterator<Item = &'a str> + Clone,
) -> (Vec<String>, Vec<String>) {
    let all = items.is_empty() || (items.len() == 1 && (items[0] == "_all" || items[0] == "*"));
    let mut selected: Vec<String> = Vec::new();
    let mut missing = Vec::new();
    if all {
        selected = names.clone().into_iter().map(str::to_owned).collect();
        return (selected, missing);
    }
    for (i, item) in items.iter().enumerate() {
        // A leading `-` excludes, but only after something was included (ES's rule), so
        // that an index really named `-x` can still be referred to first.
        if let Some(ex) = item.strip_prefix('-')
            && i > 0
        {
            selected.retain(|n| !simple_match(ex, n));
            continue;
        }
        if item == "_all" {
            for n in names.clone() {
                if !selected.iter().any(|s| s == n) {
                    selected.push(n.to_owned());
                }
            }
            continue;
        }
        if is_pattern(item) {
            for n in names.clone() {
                if simple_match(item, n) && !selected.iter().any(|s| s == n) {
                    selected.push(n.to_owned());
                }
            }
        } else if names.clone().into_iter().any(|n| n == item) {
            if !selected.iter().any(|s| s == item) {
                selected.push(item.clone());
            }
        } else {
            missing.push(item.clone());
        }
    }
    let order: Vec<&str> = names.into_iter().collect();
    selected.sort_by_key(|s| order.iter().position(|n| n == s).unwrap_or(usize::MAX));
    (selected, missing)
}

const INVALID_FILENAME_CHARS: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ','];

/// How Elasticsearch prints its `Strings.INVALID_FILENAME_CHARS` set in index, snapshot and
/// repository name errors (the set's iteration order, not the declaration order).
pub const INVALID_FILENAME_CHARS_TEXT: &str = "[ , \", *, \\, <, |, ,, >, /, ?]";

/// Checks an index name; the error is Elasticsearch's `invalid_index_name_exception`.
pub fn validate_index_name(name: &str) -> ApiResult<()> {
    let bad = |why: &str| Err(EsError::invalid_index_name(name, why));
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.chars().any(|c| INVALID_FILENAME_CHARS.contains(&c)) {
        return bad(&format!(
            "must not contain the following characters {INVALID_FILENAME_CHARS_TEXT}"
        ));
    }
    if name.contains('#') {
        return bad("must not contain '#'");
    }
    if name.contains(':') {
        return bad("must not contain ':'");
    }
    if name.starts_with(['_', '-', '+']) {
        return bad("must not start with '_', '-', or '+'");
    }
    if name != name.to_lowercase() {
        return bad("must be lowercase");
    }
    if name == "." || name == ".." {
        return bad("must not be '.' or '..'");
    }
    if name.len() > 255 {
        return bad(&format!("index name is too long, ({} > 255)", name.len()));
    }
    if name.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    Ok(())
}

/// Checks a snapshot name; the error is `invalid_snapshot_name_exception`.
pub fn validate_snapshot_name(repo: &str, name: &str) -> ApiResult<()> {
    let bad = |why: &str| Err(EsError::invalid_snapshot_name(repo, name, why));
    if name.is_empty() {
        return bad("cannot be empty");
    }
    if name.chars().any(char::is_whitespace) {
        return bad("must not contain whitespace");
    }
    if name.contains(',') {
        return bad("must not contain ','");
    }
    if name.contains('#') {
        return bad("must not contain '#'");
    }
    if name.starts_with('_') {
        return bad("must not start with '_'");
    }
    if name != name.to_lowercase() {
        return bad("must be lowercase");
    }
    if name.chars().any(|c| INVALID_FILENAME_CHARS.contains(&c)) {
        return bad(&format!(
            "must not contain the following characters {INVALID_FILENAME_CHARS_TEXT}"
        ));
    }
    if name.len() > 255 || name.chars().any(char::is_control) {
        return bad("must be at most 255 bytes of printable characters");
    }
    Ok(())
}

/// Resolves date math in a name: `<nightly-{now/d}>` becomes `nightly-2024.03.01`. Names
/// without the angle brackets are returned unchanged.
pub fn resolve_date_math(name: &str, now: DateTime<Utc>) -> Result<String, String> {
    let Some(inner) = name.strip_prefix('<').and_then(|n| n.strip_suffix('>')) else {
        return Ok(name.to_owned());
    };
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => return Err("invalid escape at the end of the expression".into()),
            },
            '{' => {
                // Up to the matching `}`, allowing one nested `{format|tz}`.
                let mut expr = String::new();
                let mut depth = 1;
                for c in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    expr.push(c);
                }
                if depth != 0 {
                    return Err("missing closing '}' in date math expression".into());
                }
                out.push_str(&eval_date_math(&expr, now)?);
            }
            '}' => return Err("unexpected '}' in date math expression".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn eval_date_math(expr: &str, now: DateTime<Utc>) -> Result<String, String> {
    let (math, format) = match expr.find('{') {
        Some(i) => {
            let fmt = expr[i + 1..]
                .strip_suffix('}')
                .ok_or("invalid date format in date math expression")?;
            (&expr[..i], fmt.split('|').next().unwrap_or("yyyy.MM.dd"))
        }
        None => (expr, "yyyy.MM.dd"),
    };
    let rest = math
        .strip_prefix("now")
        .ok_or_else(|| format!("date math expression [{math}] must start with now"))?;
    let mut t = now;
    let mut chars = rest.chars().peekable();
    while let Some(op) = chars.next() {
        let mut num = String::new();
        while let Some(d) = chars.peek().filter(|c| c.is_ascii_digit()) {
            num.push(*d);
            chars.next();
        }
        let unit = chars
            .next()
            .ok_or_else(|| format!("truncated date math [{math}]"))?;
        match op {
            '+' | '-' => {
                let n: i64 = if num.is_empty() {
                    1
                } else {
                    num.parse().map_err(|_| format!("bad number in [{math}]"))?
                };
                let n = if op == '-' { -n } else { n };
                t = add(t, n, unit).ok_or_else(|| format!("bad date math [{math}]"))?;
            }
            '/' if num.is_empty() => {
                t = round_down(t, unit).ok_or_else(|| format!("bad rounding in [{math}]"))?;
            }
            _ => return Err(format!("operator not supported for date math [{math}]")),
        }
    }
    format_java(t, format)
}

fn add(t: DateTime<Utc>, n: i64, unit: char) -> Option<DateTime<Utc>> {
    Some(match unit {
        'y' => t.with_year(t.year().checked_add(i32::try_from(n).ok()?)?)?,
        'M' => {
            let months = (i64::from(t.year()) * 12 + i64::from(t.month0())).checked_add(n)?;
            let y = i32::try_from(months.div_euclid(12)).ok()?;
            let m = u32::try_from(months.rem_euclid(12)).ok()? + 1;
            t.with_day(1)?.with_year(y)?.with_month(m)?
        }
        // Checked: the amount comes from the request, and the unchecked forms panic.
        'w' => t.checked_add_signed(Duration::try_weeks(n)?)?,
        'd' => t.checked_add_signed(Duration::try_days(n)?)?,
        'h' | 'H' => t.checked_add_signed(Duration::try_hours(n)?)?,
        'm' => t.checked_add_signed(Duration::try_minutes(n)?)?,
        's' => t.checked_add_signed(Duration::try_seconds(n)?)?,
        _ => return None,
    })
}

fn round_down(t: DateTime<Utc>, unit: char) -> Option<DateTime<Utc>> {
    let day = Utc
        .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()?;
    // Checked: at the edge of chrono's range (reachable with `now-262000y/w`) the
    // unchecked `-` panics.
    match unit {
        'y' => Utc.with_ymd_and_hms(t.year(), 1, 1, 0, 0, 0).single(),
        'M' => Utc
            .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
            .single(),
        'w' => day.checked_sub_signed(Duration::days(i64::from(
            t.weekday().num_days_from_monday(),
        ))),
        'd' => Some(day),
        'h' | 'H' => day.checked_add_signed(Duration::hours(i64::from(t.hour()))),
        'm' => day.checked_add_signed(Duration::minutes(i64::from(t.hour() * 60 + t.minute()))),
        's' => t.with_nanosecond(0),
        _ => None,
    }
}

/// Formats with the common Java pattern letters (`yyyy`, `MM`, `dd`, `HH`, `mm`, `ss`).
/// Any other text is literal: a `%` in the pattern is escaped so that it cannot become a
/// chrono specifier (an invalid one, `{now{%Q}}`, made `to_string` panic; docs/fuzzing.md).
fn format_java(t: DateTime<Utc>, pattern: &str) -> Result<String, String> {
    use std::fmt::Write as _;
    let chrono_fmt = pattern
        .replace('%', "%%")
        .replace("yyyy", "%Y")
        .replace("uuuu", "%Y")
        .replace("yy", "%y")
        .replace("MM", "%m")
        .replace("dd", "%d")
        .replace("HH", "%H")
        .replace("mm", "%M")
        .replace("ss", "%S");
    let mut out = String::new();
    write!(out, "{}", t.format(&chrono_fmt))
        .map_err(|_| format!("invalid date format [{pattern}] in date math expression"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(simple_match("a*", "abc"));
        assert!(simple_match("*c", "abc"));
        assert!(simple_match("a*c*", "abcd"));
        assert!(!simple_match("a*x", "abc"));
        assert!(simple_match("*", ""));
    }

    #[test]
    fn expressions() {
        let names = ["a1", "a2", "b1", "c"];
        let items: Vec<String> = vec!["a*".into(), "-a2".into(), "c".into(), "zz".into()];
        let (sel, missing) = resolve(&items, names.iter().copied());
        assert_eq!(sel, vec!["a1", "c"]);
        assert_eq!(missing, vec!["zz"]);
        let (sel, _) = resolve(&["_all".into()], names.iter().copied());
        assert_eq!(sel.len(), 4);
    }

    #[test]
    fn index_names() {
        validate_index_name("logs-2024").unwrap();
        assert_eq!(
            validate_index_name("Upper").unwrap_err().reason,
            "Invalid index name [Upper], must be lowercase"
        );
        assert!(validate_index_name("_x").is_err());
        assert!(validate_index_name("a b").is_err());
        assert!(validate_index_name("..").is_err());
        assert!(validate_index_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn snapshot_names() {
        validate_snapshot_name("r", "snap-1").unwrap();
        assert_eq!(
            validate_snapshot_name("r", "Snap").unwrap_err().reason,
            "[r:Snap] Invalid snapshot name [Snap], must be lowercase"
        );
        assert!(validate_snapshot_name("r", "_x").is_err());
        assert_eq!(
            validate_snapshot_name("r", "a/b").unwrap_err().reason,
            "[r:a/b] Invalid snapshot name [a/b], must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]"
        );
    }

    #[test]
    fn date_math_formats_are_literal_text_and_edges_do_not_panic() {
        // Regressions (docs/fuzzing.md): a `%` in the format reached chrono as a specifier and an
        // unknown one panicked in `to_string`; rounding at chrono's lower edge panicked.
        let now = Utc.with_ymd_and_hms(2024, 3, 1, 13, 14, 15).unwrap();
        assert_eq!(resolve_date_math("<n-{now/d{%Q}}>", now).unwrap(), "n-%Q");
        assert_eq!(
            resolve_date_math("<n-{now/d{yyyy%MM%}}>", now).unwrap(),
            "n-2024%03%"
        );
        for edge in [
            "<n-{now-262140y/w}>",
            "<n-{now-262143y/w}>",
            "<n-{now+262142y/m}>",
        ] {
            let _ = resolve_date_math(edge, now);
        }
    }

    #[test]
    fn date_math() {
        let now = Utc.with_ymd_and_hms(2024, 3, 1, 13, 14, 15).unwrap();
        assert_eq!(
            resolve_date_math("<nightly-{now/d}>", now).unwrap(),
            "nightly-2024.03.01"
        );
        assert_eq!(
            resolve_date_math("<n-{now-1d/d}>", now).unwrap(),
            "n-2024.02.29"
        );
        assert_eq!(
            resolve_date_math("<n-{now/M{yyyy-MM}}>", now).unwrap(),
            "n-2024-03"
        );
        assert_eq!(resolve_date_math("plain", now).unwrap(), "plain");
        assert!(resolve_date_math("<n-{then}>", now).is_err());
        // Amounts from the request that overflow are errors, not panics.
        for huge in [
            "<n-{now+9999999999999999d}>",
            "<n-{now-99999999999999w}>",
            "<n-{now+9223372036854775807s}>",
            "<n-{now+999999999999M}>",
            "<n-{now+99999999999y}>",
            "<n-{now+99999999999999999999h}>",
            "<n-{now+2147483000y}>",
            "<n-{now+9223372036854775807M}>",
        ] {
            assert!(resolve_date_math(huge, now).is_err(), "{huge}");
        }
    }
}
