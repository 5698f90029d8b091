//! The stash: values saved by `set` (and the last response body, as `body`) and substituted
//! into later requests, paths and expected values as `$name` or `${name}`.

use serde_json::{Map, Value};

use crate::value::{evaluate, java_string};

/// Saved values for one test. Lookups are paths, so `$body.snapshots.0` works as it does in
/// Elasticsearch's runner.
#[derive(Debug, Default, Clone)]
pub struct Stash {
    values: Map<String, Value>,
}

impl Stash {
    /// Saves `value` under `key`.
    pub fn set(&mut self, key: &str, value: Value) {
        self.values.insert(key.to_owned(), value);
    }

    /// Forgets everything (between tests).
    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// Whether `text` refers to the stash: it starts with `$`, or embeds `${name}`.
    pub fn is_reference(text: &str) -> bool {
        (text.len() > 1 && text.starts_with('$')) || embedded_key(text, 0).is_some()
    }

    /// Resolves a reference: `$name` (or `$name.path`) gives the stashed value itself, any other
    /// string has each `${name}` replaced by the stashed value's string form.
    pub fn resolve_reference(&self, text: &str) -> Result<Value, String> {
        if text.starts_with('$') && !text.starts_with("${") {
            return self.unstash(&text[1..]);
        }
        let mut out = String::new();
        let mut pos = 0;
        while let Some((start, end)) = embedded_key(text, pos) {
            out.push_str(&text[pos..start]);
            let key = &text[start + 2..end];
            out.push_str(&java_string(&self.unstash(key)?));
            pos = end + 1;
        }
        out.push_str(&text[pos..]);
        Ok(Value::String(out))
    }

    fn unstash(&self, key: &str) -> Result<Value, String> {
        let root = Value::Object(self.values.clone());
        match evaluate(&root, key, &Stash::default())? {
            Some(v) if !v.is_null() => Ok(v),
            _ => Err(format!("stashed value not found for key [{key}]")),
        }
    }

    /// Replaces every stash reference in `value`: whole strings, embedded `${name}`s, and
    /// object keys.
    pub fn replace(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) if Self::is_reference(s) => self.resolve_reference(s)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.replace(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let key = if Self::is_reference(k) {
                        java_string(&self.resolve_reference(k)?)
                    } else {
                        k.clone()
                    };
                    out.insert(key, self.replace(v)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

/// The first `${name}` at or after `from`: the offsets of `$` and of the closing `}`.
fn embedded_key(text: &str, from: usize) -> Option<(usize, usize)> {
    let start = from + text.get(from..)?.find("${")?;
    let end = start + 2 + text[start + 2..].find('}')?;
    (end > start + 2).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stash() -> Stash {
        let mut s = Stash::default();
        s.set("uuid", json!("abc"));
        s.set("n", json!(3));
        s.set("body", json!({"snapshots": [{"snapshot": "s1"}]}));
        s
    }

    #[test]
    fn whole_references_keep_their_type() {
        let s = stash();
        assert_eq!(s.resolve_reference("$n").unwrap(), json!(3));
        assert_eq!(
            s.resolve_reference("$body.snapshots.0.snapshot").unwrap(),
            json!("s1")
        );
        assert!(s.resolve_reference("$missing").is_err());
    }

    #[test]
    fn embedded_references_become_strings() {
        let s = stash();
        assert_eq!(
            s.resolve_reference("id-${uuid}-${n}").unwrap(),
            json!("id-abc-3")
        );
        assert!(Stash::is_reference("x${uuid}"));
        assert!(!Stash::is_reference("$"));
        assert!(!Stash::is_reference("plain"));
        // `${}` names nothing and stays as written.
        assert_eq!(s.resolve_reference("${}").unwrap(), json!("${}"));
    }

    #[test]
    fn replace_walks_values_and_keys() {
        let s = stash();
        let v = json!({"$uuid": ["$n", "k-${uuid}", 1], "plain": "$uuid"});
        assert_eq!(
            s.replace(&v).unwrap(),
            json!({"abc": [3, "k-abc", 1], "plain": "abc"})
        );
    }
}
