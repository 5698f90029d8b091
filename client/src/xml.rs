//! XML helpers shared by the operations: the `<Error>` document, root detection (for the
//! "200 whose body is `<Error>`" case) and escaping for the bodies we write.

use quick_xml::events::Event;
use serde::Deserialize;

/// S3's `<Error>` document.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ErrorBody {
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub host_id: Option<String>,
    /// `AuthorizationHeaderMalformed` names the region the bucket expects here.
    pub region: Option<String>,
    /// `PermanentRedirect` names the endpoint to use here.
    pub endpoint: Option<String>,
}

/// Name of the document's root element, if the bytes are XML.
pub(crate) fn root_element(body: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => buf.clear(),
        }
    }
}

/// Parses an `<Error>` body; `None` when the body is not one.
pub(crate) fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    if root_element(body).as_deref() != Some("Error") {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    quick_xml::de::from_str(text).ok()
}

/// Deserializes an answer document, describing a failure in words.
pub(crate) fn from_body<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    what: &str,
) -> Result<T, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("{what}: body is not UTF-8: {e}"))?;
    quick_xml::de::from_str(text).map_err(|e| format!("{what}: cannot parse XML: {e}"))
}

/// Escapes text for an element body we write.
pub(crate) fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS S3 API reference, "Error responses".
    const AWS_ERROR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The resource you requested does not exist</Message>
  <Resource>/mybucket/myfoto.jpg</Resource>
  <RequestId>4442587FB7D0A2F9</RequestId>
</Error>"#;

    #[test]
    fn parses_the_documented_error() {
        let e = parse_error(AWS_ERROR.as_bytes()).unwrap();
        assert_eq!(e.code, "NoSuchKey");
        assert_eq!(e.message, "The resource you requested does not exist");
        assert_eq!(e.request_id.as_deref(), Some("4442587FB7D0A2F9"));
        assert_eq!(e.region, None);
    }

    #[test]
    fn parses_the_region_hint() {
        let body = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization \
                    header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'\
                    </Message><Region>eu-west-1</Region><RequestId>R</RequestId><HostId>H</HostId></Error>";
        let e = parse_error(body.as_bytes()).unwrap();
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        assert_eq!(e.host_id.as_deref(), Some("H"));
    }

    #[test]
    fn non_error_roots_are_not_errors() {
        assert_eq!(
            root_element(b"<?xml version=\"1.0\"?><CompleteMultipartUploadResult/>").as_deref(),
            Some("CompleteMultipartUploadResult")
        );
        assert!(parse_error(b"<CopyObjectResult></CopyObjectResult>").is_none());
        assert!(parse_error(b"not xml at all").is_none());
        assert!(parse_error(b"").is_none());
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
