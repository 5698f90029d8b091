//! XML in and out: a tiny writer for response bodies and parsers for the request bodies the
//! fake accepts (`Delete`, `CompleteMultipartUpload`, `CreateBucketConfiguration`).
//!
//! Request bodies are parsed into a small element tree with quick-xml, then read by path;
//! namespaces are ignored (AWS accepts bodies with or without the S3 namespace).

use quick_xml::Reader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;

use super::error::{ErrorCode, S3Error};

/// The namespace AWS puts on every S3 response root element.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Appends XML to a string, escaping text.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    /// A writer that starts with the XML declaration.
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// `<name>`.
    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name xmlns="…S3…">`, for root elements.
    pub fn open_root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NAMESPACE);
        self.out.push_str("\">");
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>escaped text</name>`.
    pub fn element(&mut self, name: &str, text: &str) {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name);
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// An element of a parsed request body: local name, text content and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name (namespace prefix removed).
    pub name: String,
    /// Concatenated text content, entities resolved.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

fn malformed(detail: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(
        ErrorCode::MalformedXML,
        format!("{} ({detail})", ErrorCode::MalformedXML.default_message()),
    )
}

/// Parses a whole document into its root element.
pub fn parse(body: &[u8]) -> Result<Element, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| malformed("body is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                stack.push(Element {
                    name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                let element = Element {
                    name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return Err(malformed("content after the root element")),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&t.decode().map_err(malformed)?);
                } else if !t.decode().map_err(malformed)?.trim().is_empty() {
                    return Err(malformed("text outside the root element"));
                }
            }
            Event::CData(t) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&t.decode().map_err(malformed)?);
                }
            }
            Event::GeneralRef(r) => {
                let Some(current) = stack.last_mut() else {
                    return Err(malformed("entity outside the root element"));
                };
                if let Some(c) = r.resolve_char_ref().map_err(malformed)? {
                    current.text.push(c);
                } else {
                    let name = r.decode().map_err(malformed)?;
                    let value = resolve_predefined_entity(&name)
                        .ok_or_else(|| malformed(format!("unknown entity &{name};")))?;
                    current.text.push_str(value);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unclosed element"));
    }
    root.ok_or_else(|| malformed("empty document"))
}

/// A parsed `DeleteObjects` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// `<Quiet>true</Quiet>`: report only errors.
    pub quiet: bool,
    /// The keys, in request order.
    pub keys: Vec<String>,
}

/// The most keys AWS accepts in one DeleteObjects request.
pub const MAX_DELETE_KEYS: usize = 1000;

/// Parses `<Delete><Quiet/>?<Object><Key>…</Key></Object>…</Delete>`.
pub fn parse_delete(body: &[u8]) -> Result<DeleteRequest, S3Error> {
    let root = parse(body)?;
    if root.name != "Delete" {
        return Err(malformed("root element must be Delete"));
    }
    let quiet = match root.child_text("Quiet").map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(malformed(format!("Quiet must be a boolean, not {other}"))),
    };
    let mut keys = Vec::new();
    for object in root.children_named("Object") {
        let key = object
            .child_text("Key")
            .ok_or_else(|| malformed("Object without Key"))?;
        if object.child("VersionId").is_some() {
            return Err(S3Error::with_message(
                ErrorCode::NotImplemented,
                "the fake S3 does not support versioning",
            ));
        }
        keys.push(key.to_owned());
    }
    if keys.is_empty() || keys.len() > MAX_DELETE_KEYS {
        return Err(malformed(format!(
            "{} objects; between 1 and {MAX_DELETE_KEYS} are allowed",
            keys.len()
        )));
    }
    Ok(DeleteRequest { quiet, keys })
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber>n</PartNumber><ETag>e</ETag></Part>…`.
///
/// Returns `(part number, etag as sent)` in request order; order and existence are checked by
/// the caller.
pub fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>, S3Error> {
    let root = parse(body)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(malformed("root element must be CompleteMultipartUpload"));
    }
    let mut parts = Vec::new();
    for part in root.children_named("Part") {
        let number = part
            .child_text("PartNumber")
            .ok_or_else(|| malformed("Part without PartNumber"))?;
        let number: u32 = number
            .trim()
            .parse()
            .map_err(|_| malformed(format!("PartNumber {number} is not a number")))?;
        let etag = part
            .child_text("ETag")
            .ok_or_else(|| malformed("Part without ETag"))?;
        parts.push((number, etag.trim().to_owned()));
    }
    if parts.is_empty() {
        return Err(malformed("no Part"));
    }
    Ok(parts)
}

/// Parses an optional `CreateBucketConfiguration` body into its `LocationConstraint`.
pub fn parse_create_bucket(body: &[u8]) -> Result<Option<String>, S3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let root = parse(body)?;
    if root.name != "CreateBucketConfiguration" {
        return Err(malformed("root element must be CreateBucketConfiguration"));
    }
    Ok(root
        .child_text("LocationConstraint")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn writer_escapes_text() {
        let mut w = XmlWriter::new();
        w.open_root("R");
        w.element("Key", "a<b>&\"c'");
        w.close("R");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <R xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Key>a&lt;b&gt;&amp;&quot;c&apos;</Key></R>"
        );
    }

    #[test]
    fn delete_body_from_aws_docs_sample() {
        // Sample from the DeleteObjects API reference, with the namespace.
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Quiet>true</Quiet>
    <Object>
         <Key>sample1.txt</Key>
    </Object>
    <Object>
         <Key>a &amp; b/&#233;t&#xE9; </Key>
    </Object>
</Delete>"#;
        let parsed = parse_delete(body).unwrap();
        assert!(parsed.quiet);
        assert_eq!(parsed.keys, vec!["sample1.txt", "a & b/été "]);
    }

    #[test]
    fn delete_rejects_empty_and_oversized_bodies() {
        assert_eq!(
            parse_delete(b"<Delete></Delete>").unwrap_err().code,
            ErrorCode::MalformedXML
        );
        let mut body = String::from("<Delete>");
        for i in 0..=MAX_DELETE_KEYS {
            write!(body, "<Object><Key>k{i}</Key></Object>").unwrap();
        }
        body.push_str("</Delete>");
        assert_eq!(
            parse_delete(body.as_bytes()).unwrap_err().code,
            ErrorCode::MalformedXML
        );
        assert_eq!(
            parse_delete(b"<Delete><Object><Key>a</Key>")
                .unwrap_err()
                .code,
            ErrorCode::MalformedXML
        );
    }

    #[test]
    fn complete_body_from_aws_docs_sample() {
        let body = br#"<CompleteMultipartUpload>
  <Part>
    <PartNumber>1</PartNumber>
    <ETag>"a54357aff0632cce46d942af68356b38"</ETag>
  </Part>
  <Part>
    <PartNumber>2</PartNumber>
    <ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag>
  </Part>
</CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(body).unwrap(),
            vec![
                (1, "\"a54357aff0632cce46d942af68356b38\"".to_owned()),
                (2, "\"0c78aef83f66abc1fa1e8477f296d394\"".to_owned()),
            ]
        );
        assert!(parse_complete(b"<CompleteMultipartUpload/>").is_err());
        assert!(
            parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>")
                .is_err()
        );
    }

    #[test]
    fn create_bucket_configuration() {
        assert_eq!(parse_create_bucket(b"").unwrap(), None);
        assert_eq!(
            parse_create_bucket(
                b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                  <LocationConstraint>eu-west-3</LocationConstraint></CreateBucketConfiguration>"
            )
            .unwrap()
            .as_deref(),
            Some("eu-west-3")
        );
        assert!(parse_create_bucket(b"<Other/>").is_err());
    }
}
