//! Values as the tests see them: YAML converted to JSON, Java-style string forms (the
//! assertions of Elasticsearch's runner compare `toString()` results), and paths into
//! responses.

use serde_json::{Map, Number, Value};
use yaml_rust2::Yaml;

use crate::stash::Stash;

/// Converts a YAML node to JSON. Mapping keys become strings; aliases and bad values are
/// reported, since the YAML loader resolves the former and the latter means a broken file.
pub fn yaml_to_json(yaml: &Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(text) => {
            let f = yaml
                .as_f64()
                .ok_or_else(|| format!("[{text}] is not a number"))?;
            Number::from_f64(f).map_or_else(|| Value::String(text.clone()), Value::Number)
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .map(yaml_to_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (k, v) in hash {
                map.insert(yaml_key(k)?, yaml_to_json(v)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) => return Err("YAML aliases are not supported".to_owned()),
        Yaml::BadValue => return Err("invalid YAML value".to_owned()),
    })
}

/// A mapping key as a string (`1: x` and `true: x` are legal YAML keys).
pub fn yaml_key(yaml: &Yaml) -> Result<String, String> {
    match yaml {
        Yaml::String(s) | Yaml::Real(s) => Ok(s.clone()),
        Yaml::Integer(i) => Ok(i.to_string()),
        Yaml::Boolean(b) => Ok(b.to_string()),
        Yaml::Null => Ok("null".to_owned()),
        other => Err(format!("unsupported mapping key {other:?}")),
    }
}

/// The string Java's `toString()` gives for the value Elasticsearch's runner would hold:
/// maps print as `{k=v, k2=v2}` and lists as `[a, b]`. `is_true`, `is_false` and
/// `catch: /regex/` are defined on these strings, so we reproduce them exactly.
pub fn java_string(value: &Value) -> String {
    let mut out = String::new();
    write_java(value, &mut out);
    out
}

fn write_java(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&java_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                write_java(v, out);
            }
            out.push('}');
        }
    }
}

fn java_number(n: &Number) -> String {
    if n.is_f64() {
        java_double(n.as_f64().unwrap_or(f64::NAN))
    } else {
        n.to_string()
    }
}

fn java_double(f: f64) -> String {
    // Java's Double.toString always shows a fractional part for integral values.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e7 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// The Java string form of the top-level field `field` of a JSON document, with object keys in
/// document order. Elasticsearch's runner parses into insertion-ordered maps, and
/// `catch: /regex/` is matched against this string, so the order matters
/// (`snapshot_missing_exception.+ is missing` relies on `type` preceding `reason`).
/// `serde_json::Value` sorts keys, hence this separate walk over the raw text.
pub fn java_string_of_field(json: &[u8], field: &str) -> Option<String> {
    let mut out = None;
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::de::DeserializeSeed::deserialize(
        FieldSeed {
            field,
            out: &mut out,
        },
        &mut de,
    )
    .ok()?;
    out
}

struct FieldSeed<'a> {
    field: &'a str,
    out: &'a mut Option<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == self.field && self.out.is_none() {
                let mut text = String::new();
                map.next_value_seed(JavaRender {
                    out: &mut text,
                    separator: "",
                })?;
                *self.out = Some(text);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Renders a JSON value in Java string form while parsing, keeping key order. `separator` is
/// written first, so list elements get their `, ` only when they exist.
struct JavaRender<'a> {
    out: &'a mut String,
    separator: &'static str,
}

impl<'de> serde::de::DeserializeSeed<'de> for JavaRender<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JavaRender<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push_str(self.separator);
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.out.push_str(self.separator);
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.out.push_str(self.separator);
        self.out.push_str(&v.to_string());
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.out.push_str(self.separator);
        self.out.push_str(&java_double(v));
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.out.push_str(self.separator);
        self.out.push_str(v);
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.out.push_str(self.separator);
        self.out.push_str("null");
        Ok(())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push_str(self.separator);
        self.out.push('[');
        let mut separator = "";
        while seq
            .next_element_seed(JavaRender {
                out: &mut *self.out,
                separator,
            })?
            .is_some()
        {
            separator = ", ";
        }
        self.out.push(']');
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push_str(self.separator);
        self.out.push('{');
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if !first {
                self.out.push_str(", ");
            }
            first = false;
            self.out.push_str(&key);
            self.out.push('=');
            map.next_value_seed(JavaRender {
                out: &mut *self.out,
                separator: "",
            })?;
        }
        self.out.push('}');
        Ok(())
    }
}

/// A JSON value in one line, for messages. Strings are quoted so that `"1"` and `1` differ.
pub fn show(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| java_string(value))
}

/// Splits a dotted path on the dots that are not escaped with a backslash (`a\.b.c` is the two
/// parts `a.b` and `c`).
pub fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    parts
}

/// The key `_arbitrary_key_` selects the first key of an object (the key itself, not its
/// value), as in Elasticsearch's `ObjectPath`.
pub const ARBITRARY_KEY: &str = "_arbitrary_key_";

/// Follows `path` from `root`. Each part may be a stashed value (`$node_id`), which is replaced
/// by its string form first. Objects are entered by key, arrays by numeric index. `None` means
/// the path leads nowhere (a missing key, an index out of range, or a scalar in the way).
pub fn evaluate(root: &Value, path: &str, stash: &Stash) -> Result<Option<Value>, String> {
    if path.is_empty() {
        return Ok(Some(root.clone()));
    }
    let mut current = root.clone();
    for raw in split_path(path) {
        let part = if Stash::is_reference(&raw) {
            java_string(&stash.resolve_reference(&raw)?)
        } else {
            raw
        };
        current = match current {
            Value::Object(mut map) => {
                if part == ARBITRARY_KEY {
                    match map.keys().next() {
                        Some(k) => Value::String(k.clone()),
                        None => {
                            return Err(format!(
                                "requested [{ARBITRARY_KEY}] but the object at that point is empty"
                            ));
                        }
                    }
                } else {
                    match map.remove(&part) {
                        Some(v) => v,
                        None => return Ok(None),
                    }
                }
            }
            Value::Array(mut items) => {
                let index: usize = part.parse().map_err(|_| {
                    format!("element was a list, but [{part}] was not numeric (in path [{path}])")
                })?;
                if index >= items.len() {
                    return Ok(None);
                }
                items.swap_remove(index)
            }
            _ => return Ok(None),
        };
    }
    Ok(Some(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use yaml_rust2::YamlLoader;

    #[test]
    fn yaml_converts_with_types_kept() {
        let docs = YamlLoader::load_from_str(
            "a: 1\nb: \"1\"\nc: 1.5\nd: true\ne: [x, 2]\nf: ~\n3: three\n",
        )
        .unwrap();
        assert_eq!(
            yaml_to_json(&docs[0]).unwrap(),
            json!({"a": 1, "b": "1", "c": 1.5, "d": true, "e": ["x", 2], "f": null, "3": "three"})
        );
    }

    #[test]
    fn java_strings_match_java_collections() {
        assert_eq!(java_string(&json!([])), "[]");
        assert_eq!(java_string(&json!({})), "{}");
        assert_eq!(
            java_string(&json!({"a": [1, "x"], "b": null})),
            "{a=[1, x], b=null}"
        );
        assert_eq!(java_string(&json!(1.0)), "1.0");
        assert_eq!(java_string(&json!(0)), "0");
        assert_eq!(java_string(&json!(false)), "false");
    }

    #[test]
    fn field_strings_keep_document_order() {
        let body = br#"{"error": {"root_cause": [{"type": "t", "reason": "r", "n": 1.0}, 2],
                         "type": "t", "reason": "r", "x": null, "e": []}, "status": 404}"#;
        assert_eq!(
            java_string_of_field(body, "error").unwrap(),
            "{root_cause=[{type=t, reason=r, n=1.0}, 2], type=t, reason=r, x=null, e=[]}"
        );
        assert_eq!(java_string_of_field(body, "status").unwrap(), "404");
        assert_eq!(java_string_of_field(body, "missing"), None);
        assert_eq!(java_string_of_field(b"not json", "error"), None);
        assert_eq!(
            java_string_of_field(br#"{"error": "plain text"}"#, "error").unwrap(),
            "plain text"
        );
    }

    #[test]
    fn paths_split_on_unescaped_dots() {
        assert_eq!(split_path("a.b.0"), vec!["a", "b", "0"]);
        assert_eq!(split_path(r"index\.routing.x"), vec!["index.routing", "x"]);
        assert_eq!(split_path("single"), vec!["single"]);
    }

    #[test]
    fn evaluate_walks_objects_arrays_and_stash() {
        let body = json!({"snapshots": [{"state": "SUCCESS"}], "nodes": {"n1": {"name": "x"}},
                          "a.b": {"c": 1}});
        let mut stash = Stash::default();
        stash.set("node", json!("n1"));
        let e = |p: &str| evaluate(&body, p, &stash).unwrap();
        assert_eq!(e("snapshots.0.state"), Some(json!("SUCCESS")));
        assert_eq!(e("snapshots.1.state"), None);
        assert_eq!(e("snapshots.0.missing"), None);
        assert_eq!(e("snapshots.0.state.deeper"), None);
        assert_eq!(e("nodes._arbitrary_key_"), Some(json!("n1")));
        assert_eq!(e("nodes.$node.name"), Some(json!("x")));
        assert_eq!(e(r"a\.b.c"), Some(json!(1)));
        assert_eq!(e(""), Some(body.clone()));
        assert!(evaluate(&body, "snapshots.first", &stash).is_err());
        assert!(evaluate(&body, "nodes.$unset", &stash).is_err());
    }
}
