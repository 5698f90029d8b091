//! Endpoint and region resolution, addressing (path-style or virtual-hosted), URI encoding
//! of keys, and the region self-correction decision. All pure.

use std::net::IpAddr;

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Error;
use crate::settings::{ClientSettings, Protocol};
use crate::xml::ErrorBody;

/// AWS's UriEncode: everything but unreserved characters is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (object keys in paths).
const KEY: &AsciiSet = &UNRESERVED.remove(b'/');

/// Encodes an object key for a URI path (`/` kept).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

/// Encodes one path segment or query component (`/` encoded too).
pub fn encode_path_segment(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Where requests go, resolved from the settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Protocol,
    /// Host name or IP, without port.
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// The host is an AWS S3 endpoint that names a region, so a region correction also
    /// changes the host (`s3.<region>.amazonaws.com`).
    pub aws_regional: bool,
    /// Use path-style addressing.
    pub path_style: bool,
    /// The region requests are signed for, before any per-bucket correction.
    pub region: String,
}

impl Endpoint {
    /// Resolves the settings' `endpoint`, `protocol`, `region` and `path_style_access`.
    pub fn resolve(settings: &ClientSettings) -> Result<Endpoint, Error> {
        let (scheme, host, port) = match settings.endpoint.as_deref().map(str::trim) {
            None | Some("") => {
                let region = settings
                    .region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".to_owned());
                (
                    settings.protocol,
                    format!("s3.{region}.amazonaws.com"),
                    None,
                )
            }
            Some(raw) => parse_endpoint(raw, settings.protocol)?,
        };
        let derived = region_from_aws_host(&host);
        let region = settings
            .region
            .clone()
            .or_else(|| derived.clone())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Ok(Endpoint {
            scheme,
            aws_regional: derived.is_some(),
            host,
            port,
            path_style: settings.path_style_access,
            region,
        })
    }

    /// `scheme://host[:port]` (for messages).
    pub fn origin(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme.as_str(), bracket(&self.host)),
            None => format!("{}://{}", self.scheme.as_str(), bracket(&self.host)),
        }
    }

    fn host_for_region(&self, region: &str) -> String {
        if !self.aws_regional {
            return self.host.clone();
        }
        let Some(current) = region_from_aws_host(&self.host) else {
            return self.host.clone();
        };
        if current == region {
            return self.host.clone();
        }
        let suffix = if self.host.ends_with(".amazonaws.com.cn") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        // Keep the endpoint's flavour (dualstack, fips); swap only the region label.
        let prefix = self.host.strip_suffix(suffix).unwrap_or_default();
        let labels: Vec<&str> = prefix.trim_end_matches('.').split('.').collect();
        match labels.as_slice() {
            ["s3"] => format!("s3.{region}.{suffix}"),
            [single] if single.starts_with("s3-") => format!("s3.{region}.{suffix}"),
            _ => {
                let swapped: Vec<&str> = labels
                    .iter()
                    .map(|l| if *l == current { region } else { *l })
                    .collect();
                format!("{}.{suffix}", swapped.join("."))
            }
        }
    }

    fn virtual_hosted(&self, bucket: &str) -> bool {
        if self.path_style || bucket.is_empty() {
            return false;
        }
        // IP literals and bare single-label hosts (localhost, container names) cannot have a
        // bucket sub-domain; dotted bucket names break the TLS wildcard certificate.
        if self.host.parse::<IpAddr>().is_ok() || !self.host.contains('.') {
            return false;
        }
        if self.scheme == Protocol::Https && bucket.contains('.') {
            return false;
        }
        dns_compatible_bucket(bucket)
    }

    /// The URL and `Host` value for a request on `bucket`/`key` signed for `region`.
    pub fn address(
        &self,
        region: &str,
        bucket: &str,
        key: Option<&str>,
        query: &[(String, String)],
    ) -> Address {
        let base_host = self.host_for_region(region);
        let (host, mut path) = if self.virtual_hosted(bucket) {
            (format!("{bucket}.{base_host}"), "/".to_owned())
        } else if bucket.is_empty() {
            (base_host, "/".to_owned())
        } else {
            (base_host, format!("/{}", encode_path_segment(bucket)))
        };
        if let Some(key) = key {
            if !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(&encode_key(key));
        }
        let host_header = match self.port {
            Some(p) if !self.scheme.is_default_port(p) => format!("{}:{p}", bracket(&host)),
            _ => bracket(&host),
        };
        let mut url = format!("{}://{host_header}{path}", self.scheme.as_str());
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_path_segment(name));
            url.push('=');
            url.push_str(&encode_path_segment(value));
        }
        Address {
            url,
            host: host_header,
        }
    }
}

/// A request's resolved URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// Fully encoded URL.
    pub url: String,
    /// `Host` header value.
    pub host: String,
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `host`, `host:port` or `scheme://host[:port][/]`.
fn parse_endpoint(raw: &str, default: Protocol) -> Result<(Protocol, String, Option<u16>), Error> {
    let bad = |why: &str| Error::config(format!("invalid s3 endpoint [{raw}]: {why}"));
    let (scheme, rest) = match raw.split_once("://") {
        Some(("http", rest)) => (Protocol::Http, rest),
        Some(("https", rest)) => (Protocol::Https, rest),
        Some((other, _)) => return Err(bad(&format!("unsupported scheme [{other}]"))),
        None => (default, raw),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(bad("expected host, host:port or scheme://host[:port]"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_owned(), Some(p)),
            None if after.is_empty() => (h.to_owned(), None),
            None => return Err(bad("garbage after ]")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| bad(&format!("invalid port [{p}]")))
        })
        .transpose()?;
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    Ok((scheme, host.to_ascii_lowercase(), port))
}

/// The region named by an AWS S3 host: `s3.<r>.amazonaws.com`, `s3-<r>.amazonaws.com`,
/// `s3.dualstack.<r>.amazonaws.com`, `s3-fips.<r>.amazonaws.com`; `s3.amazonaws.com` is
/// `us-east-1`.
pub(crate) fn region_from_aws_host(host: &str) -> Option<String> {
    let stem = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let labels: Vec<&str> = stem.split('.').collect();
    match labels.as_slice() {
        ["s3"] => Some("us-east-1".to_owned()),
        ["s3" | "s3-fips", region] | ["s3" | "s3-fips", "dualstack", region] => {
            Some((*region).to_owned())
        }
        [single] => single.strip_prefix("s3-").map(str::to_owned),
        _ => None,
    }
}

/// S3's rules for a bucket that can be a DNS label set.
pub(crate) fn dns_compatible_bucket(bucket: &str) -> bool {
    let b = bucket.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..")
        && bucket.parse::<IpAddr>().is_err()
}

/// Rejects keys this client cannot send faithfully: `.`/`..` path segments would be
/// normalised away by URL handling (WHATWG URL treats `%2E` the same), changing the key.
pub(crate) fn validate_key(key: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::InvalidRequest {
        message: format!("object key [{key}] {why}"),
    };
    if key.is_empty() {
        return Err(bad("is empty"));
    }
    if key.len() > 1024 {
        return Err(bad("is longer than 1024 bytes"));
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err(bad("has a '.' or '..' path segment"));
    }
    Ok(())
}

/// Validates a bucket name enough that it cannot break the URL.
pub(crate) fn validate_bucket(bucket: &str) -> Result<(), Error> {
    if bucket.is_empty()
        || bucket.len() > 255
        || !bucket
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        || bucket == "."
        || bucket == ".."
    {
        return Err(Error::InvalidRequest {
            message: format!("bucket name [{bucket}] is not a valid S3 bucket name"),
        });
    }
    Ok(())
}

/// The region self-correction decision: given an error answer, the region the server wants,
/// if it names one different from `current`. Sources, in order: the `x-amz-bucket-region`
/// header (301/307/400, also on HEAD where there is no body), then the `<Region>` element of
/// `AuthorizationHeaderMalformed`.
pub(crate) fn region_hint(
    status: u16,
    headers: &HeaderMap,
    error: Option<&ErrorBody>,
    current: &str,
) -> Option<String> {
    if !matches!(status, 301 | 307 | 400) {
        return None;
    }
    let code = error.map_or("", |e| e.code.as_str());
    if !matches!(
        code,
        "" | "PermanentRedirect"
            | "TemporaryRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException"
    ) {
        return None;
    }
    let hint = headers
        .get("x-amz-bucket-region")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| error.and_then(|e| e.region.clone()))?;
    let hint = hint.trim();
    let plausible = !hint.is_empty()
        && hint.len() <= 64
        && hint
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    (plausible && hint != current).then(|| hint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn settings(endpoint: Option<&str>, region: Option<&str>, path_style: bool) -> ClientSettings {
        ClientSettings {
            endpoint: endpoint.map(str::to_owned),
            region: region.map(str::to_owned),
            path_style_access: path_style,
            ..ClientSettings::default()
        }
    }

    #[test]
    fn default_endpoint_is_aws_regional() {
        let e = Endpoint::resolve(&settings(None, None, false)).unwrap();
        assert_eq!(
            (e.host.as_str(), e.region.as_str(), e.scheme),
            ("s3.us-east-1.amazonaws.com", "us-east-1", Protocol::Https)
        );
        let e = Endpoint::resolve(&settings(None, Some("eu-west-3"), false)).unwrap();
        assert_eq!(e.host, "s3.eu-west-3.amazonaws.com");
        assert!(e.aws_regional);
    }

    #[test]
    fn endpoint_forms() {
        let e = Endpoint::resolve(&settings(
            Some("http://127.0.0.1:3900"),
            Some("garage"),
            false,
        ))
        .unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port, e.region.as_str()),
            (Protocol::Http, "127.0.0.1", Some(3900), "garage")
        );
        let e = Endpoint::resolve(&settings(Some("minio.local:9000"), None, false)).unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port, e.region.as_str()),
            (Protocol::Https, "minio.local", Some(9000), "us-east-1")
        );
        let mut s = settings(Some("storage.example.com"), None, false);
        s.protocol = Protocol::Http;
        let e = Endpoint::resolve(&s).unwrap();
        assert_eq!((e.scheme, e.port), (Protocol::Http, None));
        let e = Endpoint::resolve(&settings(Some("https://[::1]:9000/"), None, true)).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", Some(9000)));
        assert_eq!(e.origin(), "https://[::1]:9000");
        for bad in ["ftp://x", "http://", "x:notaport", "http://h/path", "u@h"] {
            let err = Endpoint::resolve(&settings(Some(bad), None, false)).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn region_derived_from_aws_hosts() {
        for (host, want) in [
            ("s3.amazonaws.com", Some("us-east-1")),
            ("s3.eu-west-1.amazonaws.com", Some("eu-west-1")),
            ("s3-us-west-2.amazonaws.com", Some("us-west-2")),
            ("s3.dualstack.ap-south-1.amazonaws.com", Some("ap-south-1")),
            ("s3-fips.us-gov-west-1.amazonaws.com", Some("us-gov-west-1")),
            ("s3.cn-north-1.amazonaws.com.cn", Some("cn-north-1")),
            ("minio.example.com", None),
            ("ec2.amazonaws.com", None),
        ] {
            assert_eq!(region_from_aws_host(host).as_deref(), want, "{host}");
        }
        let e = Endpoint::resolve(&settings(
            Some("s3.eu-central-1.amazonaws.com"),
            None,
            false,
        ))
        .unwrap();
        assert_eq!(e.region, "eu-central-1");
        let e = Endpoint::resolve(&settings(
            Some("s3.eu-central-1.amazonaws.com"),
            Some("us-west-1"),
            false,
        ))
        .unwrap();
        assert_eq!(e.region, "us-west-1", "settings win over the endpoint");
    }

    #[test]
    fn addressing_styles() {
        let q = vec![
            ("list-type".to_owned(), "2".to_owned()),
            ("prefix".to_owned(), "a b+c/".to_owned()),
        ];
        let vh = Endpoint::resolve(&settings(None, Some("eu-west-1"), false)).unwrap();
        let a = vh.address("eu-west-1", "my-bucket", Some("dir/a b+é.txt"), &[]);
        assert_eq!(
            a.url,
            "https://my-bucket.s3.eu-west-1.amazonaws.com/dir/a%20b%2B%C3%A9.txt"
        );
        assert_eq!(a.host, "my-bucket.s3.eu-west-1.amazonaws.com");
        let a = vh.address("eu-west-1", "my-bucket", None, &q);
        assert_eq!(
            a.url,
            "https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2&prefix=a%20b%2Bc%2F"
        );
        // A corrected region moves the AWS host too, keeping its flavour.
        let a = vh.address("ap-east-1", "my-bucket", None, &[]);
        assert_eq!(a.host, "my-bucket.s3.ap-east-1.amazonaws.com");
        let ds = Endpoint::resolve(&settings(
            Some("s3.dualstack.us-west-2.amazonaws.com"),
            None,
            true,
        ))
        .unwrap();
        assert_eq!(
            ds.address("eu-west-1", "b", None, &[]).host,
            "s3.dualstack.eu-west-1.amazonaws.com"
        );
        let global = Endpoint::resolve(&settings(Some("s3.amazonaws.com"), None, true)).unwrap();
        assert_eq!(
            global.address("us-east-1", "b", None, &[]).host,
            "s3.amazonaws.com"
        );
        assert_eq!(
            global.address("eu-north-1", "b", None, &[]).host,
            "s3.eu-north-1.amazonaws.com"
        );
        // Dotted bucket over https falls back to path style.
        let a = vh.address("eu-west-1", "my.bucket", Some("k"), &[]);
        assert_eq!(a.url, "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
        let ps = Endpoint::resolve(&settings(Some("http://127.0.0.1:3900"), None, false)).unwrap();
        let a = ps.address("garage", "b", Some("k/x"), &[]);
        assert_eq!(
            (a.url.as_str(), a.host.as_str()),
            ("http://127.0.0.1:3900/b/k/x", "127.0.0.1:3900")
        );
        let forced =
            Endpoint::resolve(&settings(Some("https://minio.example.com"), None, true)).unwrap();
        assert_eq!(
            forced.address("us-east-1", "b", None, &[]).url,
            "https://minio.example.com/b"
        );
        let default_port =
            Endpoint::resolve(&settings(Some("https://minio.example.com:443"), None, true))
                .unwrap();
        assert_eq!(
            default_port.address("us-east-1", "b", None, &[]).host,
            "minio.example.com"
        );
    }

    #[test]
    fn key_and_bucket_validation() {
        assert!(validate_key("a/b c/é").is_ok());
        assert!(validate_key("a//b").is_ok());
        assert!(validate_key("..a/b.").is_ok());
        for bad in ["", "a/../b", "./a", "a/."] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
        assert!(validate_key(&"k".repeat(1025)).is_err());
        assert!(validate_bucket("my-bucket_1.x").is_ok());
        assert!(validate_bucket("a/b").is_err());
        assert!(validate_bucket("").is_err());
        assert!(dns_compatible_bucket("my-bucket"));
        assert!(!dns_compatible_bucket("My_Bucket"));
        assert!(!dns_compatible_bucket("192.168.1.1"));
    }

    #[test]
    fn region_hint_decisions() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-bucket-region", HeaderValue::from_static("eu-west-1"));
        assert_eq!(
            region_hint(301, &h, None, "us-east-1").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_hint(301, &h, None, "eu-west-1"),
            None,
            "same region: no loop"
        );
        assert_eq!(region_hint(403, &h, None, "us-east-1"), None);
        let body = ErrorBody {
            code: "AuthorizationHeaderMalformed".into(),
            region: Some("garage".into()),
            ..ErrorBody::default()
        };
        assert_eq!(
            region_hint(400, &HeaderMap::new(), Some(&body), "us-east-1").as_deref(),
            Some("garage")
        );
        let other = ErrorBody {
            code: "InvalidArgument".into(),
            region: Some("x".into()),
            ..ErrorBody::default()
        };
        assert_eq!(
            region_hint(400, &HeaderMap::new(), Some(&other), "us-east-1"),
            None
        );
        let redirect = ErrorBody {
            code: "PermanentRedirect".into(),
            ..ErrorBody::default()
        };
        assert_eq!(
            region_hint(301, &HeaderMap::new(), Some(&redirect), "us-east-1"),
            None,
            "no region named"
        );
        let mut evil = HeaderMap::new();
        evil.insert("x-amz-bucket-region", HeaderValue::from_static("a/b"));
        assert_eq!(region_hint(301, &evil, None, "us-east-1"), None);
    }
}
