//! The `__client` cookie: reading it out of what the user pasted, and picking up the rotated
//! value that Clerk hands back in `Set-Cookie`.
//!
//! `__client` is the only credential Clerk's Frontend API needs to mint session tokens. Users
//! tend to paste the whole browser `Cookie:` header, a `name=value` pair or just the value, so
//! all three are accepted.

use http::HeaderMap;

use super::UpstreamError;

/// The cookie name Clerk keeps its long-lived client credential under.
pub const CLIENT_COOKIE: &str = "__client";

/// Extracts the `__client` value from a pasted cookie: a whole `Cookie:` header
/// (`a=b; __client=XYZ; ...`, optionally prefixed with `Cookie:`), `__client=XYZ` alone,
/// or the bare value `XYZ`.
pub fn parse_pasted_cookie(input: &str) -> Result<String, UpstreamError> {
    let mut text = input.trim();
    if text.len() >= 7 && text[..7].eq_ignore_ascii_case("cookie:") {
        text = text[7..].trim();
    }
    if text.is_empty() {
        return Err(bad_cookie("the cookie is empty"));
    }
    // A header cannot carry them, and inside a paste they mean it went wrong (two lines glued,
    // a stray NUL): say so now rather than fail every call to cto.new later.
    if text.contains(|c: char| c.is_ascii_control()) {
        return Err(bad_cookie(
            "the cookie contains a control character (CR, LF, NUL, tab or similar); paste it again as one line",
        ));
    }
    for pair in text.split(';') {
        if let Some((name, value)) = pair.split_once('=')
            && name.trim() == CLIENT_COOKIE
        {
            let value = unquote(value.trim());
            if value.is_empty() {
                return Err(bad_cookie("`__client` is present but empty"));
            }
            return Ok(value.to_string());
        }
    }
    // A bare value: no pairs at all. Base64 padding (`abc==`) is the only `=` it may carry.
    let unpadded = text.trim_end_matches('=');
    if !text.contains(';') && !unpadded.contains('=') && !unpadded.contains(char::is_whitespace) {
        return Ok(unquote(text).to_string());
    }
    Err(bad_cookie("the cookie has no `__client=` entry"))
}

fn bad_cookie(what: &str) -> UpstreamError {
    UpstreamError::BadCookie(format!(
        "{what}; expected the browser's Cookie header for clerk.cto.new (containing `__client=...`) or the bare `__client` value"
    ))
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// The new `__client` value carried by one `Set-Cookie` header value, if it sets one.
/// Deletions (empty value, `Max-Age=0` or negative) are not new values.
pub fn client_from_set_cookie(header: &str) -> Option<String> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    if name.trim() != CLIENT_COOKIE {
        return None;
    }
    let value = unquote(value.trim());
    if value.is_empty() {
        return None;
    }
    for attr in parts {
        if let Some((k, v)) = attr.split_once('=')
            && k.trim().eq_ignore_ascii_case("max-age")
            && v.trim().parse::<i64>().is_ok_and(|age| age <= 0)
        {
            return None;
        }
    }
    Some(value.to_string())
}

/// The last new `__client` value among a response's `Set-Cookie` headers.
pub fn client_from_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(client_from_set_cookie)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_cookie_header() {
        let got = parse_pasted_cookie("a=b; __client_uat=123; __client=XYZ.abc; __session=s")
            .expect("parses");
        assert_eq!(got, "XYZ.abc");
    }

    #[test]
    fn cookie_prefix_and_pair_alone() {
        assert_eq!(
            parse_pasted_cookie("Cookie: __client=abc").expect("parses"),
            "abc"
        );
        assert_eq!(
            parse_pasted_cookie(" __client=abc ").expect("parses"),
            "abc"
        );
        assert_eq!(
            parse_pasted_cookie("__client=\"quoted\"").expect("parses"),
            "quoted"
        );
    }

    #[test]
    fn bare_value() {
        assert_eq!(
            parse_pasted_cookie("  eyJhbGci.eyJpZCI.sig \n").expect("parses"),
            "eyJhbGci.eyJpZCI.sig"
        );
        assert_eq!(parse_pasted_cookie("abc==").expect("parses"), "abc==");
    }

    #[test]
    fn rejects_control_characters_without_echoing_the_value() {
        for bad in [
            "__client=abc\r\nX: 1",
            "__client=abc\0",
            "a=b; __client=x\ty",
            "abc\ndef",
        ] {
            let err = parse_pasted_cookie(bad).expect_err(bad);
            let text = err.to_string();
            assert!(text.contains("control character"), "{text}");
            assert!(!text.contains("abc"), "{text}");
        }
        assert_eq!(
            parse_pasted_cookie("__client=ok\n").expect("trailing newline"),
            "ok"
        );
    }

    #[test]
    fn rejects_empty_and_missing() {
        for bad in ["", "   ", "a=b; c=d", "__client_uat=1", "__client=", "a b"] {
            let err = parse_pasted_cookie(bad).expect_err(bad);
            assert!(matches!(err, UpstreamError::BadCookie(_)), "{bad}");
            assert!(err.to_string().contains("__client"));
        }
    }

    #[test]
    fn set_cookie_rotation() {
        assert_eq!(
            client_from_set_cookie("__client=NEW; Path=/; Domain=.clerk.cto.new; HttpOnly"),
            Some("NEW".to_string())
        );
        assert_eq!(client_from_set_cookie("__client=; Max-Age=0"), None);
        assert_eq!(
            client_from_set_cookie("__client=x; Max-Age=0; Path=/"),
            None
        );
        assert_eq!(client_from_set_cookie("__client_uat=5; Path=/"), None);
        assert_eq!(client_from_set_cookie("garbage"), None);
    }

    #[test]
    fn set_cookie_headers_pick_last_client() {
        let mut h = HeaderMap::new();
        h.append(http::header::SET_COOKIE, "__cf_bm=x".parse().expect("hv"));
        h.append(
            http::header::SET_COOKIE,
            "__client=ONE".parse().expect("hv"),
        );
        h.append(
            http::header::SET_COOKIE,
            "__client=; Max-Age=0".parse().expect("hv"),
        );
        h.append(
            http::header::SET_COOKIE,
            "__client=TWO".parse().expect("hv"),
        );
        assert_eq!(client_from_headers(&h), Some("TWO".to_string()));
        assert_eq!(client_from_headers(&HeaderMap::new()), None);
    }
}
