//! The enrollment link an operator hands a worker as a QR code: where the sync server is
//! and the one-time code, so the app configures itself in one scan.
//!
//! `wangge:enroll?server=https%3A%2F%2Fsync.example.gov.cn&code=3f9a…`. The app may also
//! be given a bare code (typed by hand); then it has no server address.

use crate::model::{Invalid, InvalidField};

/// What an enrollment QR code carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentLink {
    /// The sync server's base URL (`http(s)://…`), when the link names one.
    pub server: Option<String>,
    /// The one-time enrollment code.
    pub code: String,
}

const SCHEME: &str = "wangge";

/// The link's text for a QR code.
pub fn enrollment_link(server: &str, code: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("server", server)
        .append_pair("code", code)
        .finish();
    format!("{SCHEME}:enroll?{query}")
}

/// Reads a scanned or typed text: an enrollment link, or a bare code.
pub fn parse_enrollment_link(text: &str) -> Result<EnrollmentLink, InvalidField> {
    let invalid = |rule| InvalidField::new("enrollment_link", Invalid::Rule(rule));
    let text = text.trim();
    let is_code = |code: &str| !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric());
    if !text.contains(':') {
        return if is_code(text) {
            Ok(EnrollmentLink { server: None, code: text.to_owned() })
        } else {
            Err(invalid("is neither an enrollment link nor a code"))
        };
    }
    let link = url::Url::parse(text).map_err(|_| invalid("is not a link"))?;
    if link.scheme() != SCHEME || link.path() != "enroll" {
        return Err(invalid("is not a wangge enrollment link"));
    }
    let value = |key: &str| link.query_pairs().find(|(name, _)| name == key).map(|(_, value)| value.into_owned());
    let code = value("code").filter(|code| is_code(code)).ok_or_else(|| invalid("has no valid code"))?;
    let server = match value("server") {
        None => None,
        Some(server) => {
            let parsed = url::Url::parse(&server).map_err(|_| invalid("names a server that is not a URL"))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(invalid("names a server that is not http(s)"));
            }
            Some(server)
        }
    };
    Ok(EnrollmentLink { server, code })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_link_round_trips_and_a_bare_code_is_accepted() {
        let text = enrollment_link("https://sync.example.gov.cn:8443/wangge?x=1&y=2", "3f9a0c21d4e5b6a78899");
        assert!(text.starts_with("wangge:enroll?server=https%3A%2F%2F"), "{text}");
        let link = parse_enrollment_link(&format!(" {text}\n")).unwrap();
        assert_eq!(link.server.as_deref(), Some("https://sync.example.gov.cn:8443/wangge?x=1&y=2"));
        assert_eq!(link.code, "3f9a0c21d4e5b6a78899");
        assert_eq!(
            parse_enrollment_link("3f9a0c21d4e5b6a78899").unwrap(),
            EnrollmentLink { server: None, code: "3f9a0c21d4e5b6a78899".into() }
        );
    }

    #[test]
    fn other_texts_are_refused_with_the_reason() {
        for (text, reason) in [
            ("https://example.com/?code=abc", "is not a wangge enrollment link"),
            ("wangge:enroll?server=https%3A%2F%2Fa.cn", "has no valid code"),
            ("wangge:enroll?server=ftp%3A%2F%2Fa.cn&code=abc", "names a server that is not http(s)"),
            ("wangge:enroll?code=a%20b", "has no valid code"),
            ("not a code", "is neither an enrollment link nor a code"),
        ] {
            let refused = parse_enrollment_link(text).unwrap_err().to_string();
            assert!(refused.contains(reason), "{text}: {refused}");
        }
    }
}
