//! `skip` and `requires` sections: version ranges, runner features, cluster features and API
//! capabilities.

use std::fmt;

use serde_json::Value;

use crate::value::show;

/// Runner features this runner implements. A test needing any other is skipped, as
/// Elasticsearch's runner does. `fips_140` is listed because coffer never runs in FIPS mode,
/// which is what tests skipping on it want to know.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "allowed_warnings",
    "allowed_warnings_regex",
    "arbitrary_key",
    "capabilities",
    "catch_unauthorized",
    "close_to",
    "contains",
    "embedded_stash_key",
    "fips_140",
    "headers",
    "stash_in_key",
    "stash_in_path",
    "stash_path_replace",
    "transform_and_set",
    "warnings",
    "warnings_regex",
];

/// A version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `8.17.0` (a qualifier such as `-SNAPSHOT` is ignored; missing parts are 0).
    pub fn parse(text: &str) -> Result<Self, String> {
        let core = text.trim().split(['-', '+']).next().unwrap_or_default();
        let mut nums = core.split('.').map(|p| {
            p.parse::<u32>()
                .map_err(|_| format!("[{text}] is not a version"))
        });
        let major = nums
            .next()
            .ok_or_else(|| format!("[{text}] is not a version"))??;
        let minor = nums.next().transpose()?.unwrap_or(0);
        let patch = nums.next().transpose()?.unwrap_or(0);
        if nums.next().is_some() {
            return Err(format!("[{text}] is not a version"));
        }
        Ok(Self(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Whether `version` falls in `ranges`: `all`, or comma-separated `low - high` with either
/// end open (`" - 7.12.99"`, `"8.0.0 - "`), or a single version.
pub fn version_in_ranges(ranges: &str, version: Version) -> Result<bool, String> {
    for range in ranges.split(',') {
        let range = range.trim();
        if range == "all" {
            return Ok(true);
        }
        let hit = if let Some((low, high)) = range.split_once(" - ").or_else(|| {
            // " - 7.12.99" trimmed is "- 7.12.99"; "8.0.0 - " trimmed is "8.0.0 -".
            range
                .strip_prefix('-')
                .map(|h| ("", h))
                .or_else(|| range.strip_suffix('-').map(|l| (l, "")))
        }) {
            let low = low.trim();
            let high = high.trim();
            let above = low.is_empty() || version >= Version::parse(low)?;
            let below = high.is_empty() || version <= Version::parse(high)?;
            above && below
        } else {
            version == Version::parse(range)?
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `skip` or `requires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrereqKind {
    /// Skip when a criterion holds.
    Skip,
    /// Run only when every criterion holds.
    Requires,
}

/// One API capability query (`GET /_capabilities`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityCheck {
    /// Method, e.g. `DELETE`.
    pub method: String,
    /// Path template, e.g. `/_snapshot/{repository}/{snapshot}`.
    pub path: String,
    /// Parameters that must be supported.
    pub parameters: Vec<String>,
    /// Named capabilities that must be supported.
    pub capabilities: Vec<String>,
}

impl fmt::Display for CapabilityCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if !self.parameters.is_empty() {
            write!(f, " parameters [{}]", self.parameters.join(","))?;
        }
        if !self.capabilities.is_empty() {
            write!(f, " capabilities [{}]", self.capabilities.join(","))?;
        }
        Ok(())
    }
}

/// A parsed `skip` or `requires` section.
#[derive(Debug, Clone)]
pub struct Prereq {
    /// Which kind.
    pub kind: PrereqKind,
    /// `skip.version` ranges.
    pub version: Option<String>,
    /// `skip.features` / `requires.test_runner_features`.
    pub runner_features: Vec<String>,
    /// `cluster_features`.
    pub cluster_features: Vec<String>,
    /// `capabilities`.
    pub capabilities: Vec<CapabilityCheck>,
    /// `skip.os`.
    pub os: Vec<String>,
    /// `skip.awaits_fix`.
    pub awaits_fix: Option<String>,
    /// `skip.known_issues` is present.
    pub known_issues: bool,
    /// The stated reason.
    pub reason: Option<String>,
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("[{what}] entries must be strings, got {}", show(v)))
            })
            .collect(),
        other => Err(format!(
            "[{what}] must be a string or list, got {}",
            show(other)
        )),
    }
}

fn capability(value: &Value) -> Result<CapabilityCheck, String> {
    let get = |k: &str| value.get(k);
    let opt_list = |k: &str| get(k).map_or(Ok(Vec::new()), |v| strings(v, k));
    Ok(CapabilityCheck {
        method: get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_owned(),
        path: get("path")
            .and_then(Value::as_str)
            .ok_or("a capability check needs a [path]")?
            .to_owned(),
        parameters: opt_list("parameters")?,
        capabilities: opt_list("capabilities")?,
    })
}

impl Prereq {
    /// Parses the value of a `skip` or `requires` step.
    pub fn parse(kind: PrereqKind, value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("must be a mapping".to_owned());
        };
        let mut p = Self {
            kind,
            version: None,
            runner_features: Vec::new(),
            cluster_features: Vec::new(),
            capabilities: Vec::new(),
            os: Vec::new(),
            awaits_fix: None,
            known_issues: false,
            reason: None,
        };
        for (k, v) in map {
            match (kind, k.as_str()) {
                (_, "reason") => p.reason = Some(crate::value::java_string(v)),
                (_, "cluster_features") => p.cluster_features = strings(v, k)?,
                (_, "capabilities") => {
                    p.capabilities = match v {
                        Value::Array(items) => {
                            items.iter().map(capability).collect::<Result<_, _>>()?
                        }
                        other => vec![capability(other)?],
                    }
                }
                (PrereqKind::Skip, "version") => p.version = Some(crate::value::java_string(v)),
                (PrereqKind::Skip, "features") | (PrereqKind::Requires, "test_runner_features") => {
                    p.runner_features = strings(v, k)?;
                }
                (PrereqKind::Skip, "os") => p.os = strings(v, k)?,
                (PrereqKind::Skip, "awaits_fix") => {
                    p.awaits_fix = Some(crate::value::java_string(v));
                }
                (PrereqKind::Skip, "known_issues") => p.known_issues = true,
                (_, other) => return Err(format!("unknown key [{other}]")),
            }
        }
        Ok(p)
    }
}

/// What the runner knows about the server, for deciding prerequisites.
pub struct Environment<'a> {
    /// The server's version.
    pub version: Version,
    /// Asks the server about capabilities: `Some(true/false)` when it answered, `None` when
    /// it has no capabilities API.
    pub capabilities: &'a dyn Fn(&CapabilityCheck) -> Result<Option<bool>, String>,
}

/// The result of the prerequisites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the test.
    Run,
    /// Skip it, for this reason.
    Skip(String),
}

/// Whether the server has a cluster feature. Historical features `gte_vX.Y.Z` follow from the
/// version; coffer advertises no other.
fn has_cluster_feature(feature: &str, version: Version) -> Result<bool, String> {
    match feature.strip_prefix("gte_v") {
        Some(v) => Ok(version >= Version::parse(v)?),
        None => Ok(false),
    }
}

fn with_reason(p: &Prereq, detail: String) -> String {
    match &p.reason {
        Some(r) => format!("{detail} ({r})"),
        None => detail,
    }
}

/// Decides the prerequisites in order; the first that says skip wins.
pub fn decide(prereqs: &[Prereq], env: &Environment<'_>) -> Result<Decision, String> {
    for p in prereqs {
        let unsupported: Vec<&str> = p
            .runner_features
            .iter()
            .map(String::as_str)
            .filter(|f| !SUPPORTED_FEATURES.contains(f))
            .collect();
        if !unsupported.is_empty() {
            return Ok(Decision::Skip(with_reason(
                p,
                format!("needs runner features [{}]", unsupported.join(", ")),
            )));
        }
        match p.kind {
            PrereqKind::Requires => {
                for f in &p.cluster_features {
                    if !has_cluster_feature(f, env.version)? {
                        return Ok(Decision::Skip(with_reason(
                            p,
                            format!("needs cluster feature [{f}], which coffer does not have"),
                        )));
                    }
                }
                for c in &p.capabilities {
                    match (env.capabilities)(c)? {
                        Some(true) => {}
                        Some(false) => {
                            return Ok(Decision::Skip(with_reason(
                                p,
                                format!("server lacks capability {c}"),
                            )));
                        }
                        None => {
                            return Ok(Decision::Skip(with_reason(
                                p,
                                format!(
                                    "needs capability {c}, but the server has no _capabilities API"
                                ),
                            )));
                        }
                    }
                }
            }
            PrereqKind::Skip => {
                if let Some(ranges) = &p.version
                    && version_in_ranges(ranges, env.version)?
                {
                    return Ok(Decision::Skip(with_reason(
                        p,
                        format!("version {} is in [{ranges}]", env.version),
                    )));
                }
                if let Some(issue) = &p.awaits_fix {
                    return Ok(Decision::Skip(format!("awaits fix: {issue}")));
                }
                if p.known_issues {
                    return Ok(Decision::Skip(with_reason(p, "known issues".to_owned())));
                }
                if p.os.iter().any(|os| os == std::env::consts::OS) {
                    return Ok(Decision::Skip(with_reason(
                        p,
                        format!("skipped on {}", std::env::consts::OS),
                    )));
                }
                for f in &p.cluster_features {
                    if has_cluster_feature(f, env.version)? {
                        return Ok(Decision::Skip(with_reason(
                            p,
                            format!("server has cluster feature [{f}]"),
                        )));
                    }
                }
                if !p.capabilities.is_empty() {
                    let mut all = true;
                    for c in &p.capabilities {
                        all &= (env.capabilities)(c)? == Some(true);
                    }
                    if all {
                        return Ok(Decision::Skip(with_reason(
                            p,
                            "server has the capabilities".to_owned(),
                        )));
                    }
                }
            }
        }
    }
    Ok(Decision::Run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env_with(answer: Option<bool>) -> impl Fn(&CapabilityCheck) -> Result<Option<bool>, String> {
        move |_| Ok(answer)
    }

    fn decide_one(kind: PrereqKind, v: &Value, caps: Option<bool>) -> Decision {
        let p = Prereq::parse(kind, v).unwrap();
        let f = env_with(caps);
        let env = Environment {
            version: Version(8, 17, 0),
            capabilities: &f,
        };
        decide(&[p], &env).unwrap()
    }

    #[test]
    fn versions_and_ranges() {
        let v = Version::parse("8.17.0").unwrap();
        assert_eq!(Version::parse("8.17.0-SNAPSHOT").unwrap(), v);
        assert!(Version::parse("x").is_err());
        assert!(version_in_ranges("all", v).unwrap());
        assert!(!version_in_ranges(" - 7.12.99", v).unwrap());
        assert!(version_in_ranges("8.0.0 - ", v).unwrap());
        assert!(version_in_ranges("7.0.0 - 7.1.0, 8.10.0 - 8.17.0", v).unwrap());
        assert!(!version_in_ranges("8.17.1 - 9.0.0", v).unwrap());
        assert!(version_in_ranges("8.17.0", v).unwrap());
    }

    #[test]
    fn skip_sections() {
        use PrereqKind::Skip;
        assert_eq!(
            decide_one(Skip, &json!({"version": " - 7.12.99", "reason": "r"}), None),
            Decision::Run
        );
        assert!(matches!(
            decide_one(Skip, &json!({"version": "all", "reason": "r"}), None),
            Decision::Skip(r) if r.contains("(r)")
        ));
        assert_eq!(
            decide_one(Skip, &json!({"features": ["arbitrary_key"]}), None),
            Decision::Run
        );
        assert_eq!(
            decide_one(Skip, &json!({"features": "fips_140"}), None),
            Decision::Run
        );
        assert!(matches!(
            decide_one(Skip, &json!({"features": ["node_selector", "headers"]}), None),
            Decision::Skip(r) if r.contains("node_selector") && !r.contains("headers")
        ));
        assert!(matches!(
            decide_one(Skip, &json!({"awaits_fix": "#1"}), None),
            Decision::Skip(_)
        ));
        assert!(matches!(
            decide_one(Skip, &json!({"cluster_features": ["gte_v8.0.0"]}), None),
            Decision::Skip(_)
        ));
        assert!(Prereq::parse(Skip, &json!({"bogus": 1})).is_err());
        assert!(Prereq::parse(Skip, &json!({"test_runner_features": "x"})).is_err());
    }

    #[test]
    fn requires_sections() {
        use PrereqKind::Requires;
        assert_eq!(
            decide_one(
                Requires,
                &json!({"cluster_features": ["gte_v7.10.0"], "reason": "r"}),
                None
            ),
            Decision::Run
        );
        assert!(matches!(
            decide_one(Requires, &json!({"cluster_features": "get.snapshots.state_parameter"}), None),
            Decision::Skip(r) if r.contains("get.snapshots.state_parameter")
        ));
        assert!(matches!(
            decide_one(Requires, &json!({"cluster_features": ["gte_v9.1.0"]}), None),
            Decision::Skip(_)
        ));
        let caps = json!({"test_runner_features": "capabilities",
            "capabilities": [{"method": "DELETE", "path": "/_snapshot/{repository}/{snapshot}",
                              "parameters": ["wait_for_completion"]}]});
        assert_eq!(decide_one(Requires, &caps, Some(true)), Decision::Run);
        assert!(matches!(
            decide_one(Requires, &caps, Some(false)),
            Decision::Skip(r) if r.contains("wait_for_completion")
        ));
        assert!(matches!(
            decide_one(Requires, &caps, None),
            Decision::Skip(r) if r.contains("no _capabilities API")
        ));
    }
}
