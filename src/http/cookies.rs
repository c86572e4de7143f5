//! Reading and setting the layer's cookies: `HttpOnly`, `SameSite=Lax`, `Path=/`; over HTTPS
//! also `Secure`, under the `__Host-` prefix (which a browser accepts only from a secure origin,
//! for the whole host, so no subdomain or plain-HTTP page can plant one).

use cookie::{Cookie, SameSite};
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};

/// The pass cookie's name (before the `__Host-` prefix).
pub(crate) const PASS: &str = "sg_pass";
/// The visitor cookie's name (before the `__Host-` prefix).
pub(crate) const VISITOR: &str = "sg_visitor";
/// The longest cookie value the layer reads (its texts are at most 108 characters).
const MAX_VALUE_LEN: usize = 256;

/// The value of cookie `name` (the `__Host-` one first, if both came), if any and not too long.
/// With `host_only` (the site is served over HTTPS), only the `__Host-` one: a cookie without
/// the prefix may have been set by a sibling subdomain or over plain HTTP.
pub(crate) fn read<'h>(headers: &'h HeaderMap, name: &str, host_only: bool) -> Option<&'h str> {
    let mut plain = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            if value.len() > MAX_VALUE_LEN {
                continue;
            }
            match key.trim().strip_prefix("__Host-") {
                Some(rest) if rest == name => return Some(value),
                None if !host_only && key.trim() == name => plain = plain.or(Some(value)),
                _ => {}
            }
        }
    }
    plain
}

/// A `Set-Cookie` value for `name`; `max_age_s` 0 clears it.
pub(crate) fn set(name: &str, value: &str, secure: bool, max_age_s: u64) -> HeaderValue {
    let full_name = if secure {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    };
    let max_age = cookie::time::Duration::seconds(i64::try_from(max_age_s).unwrap_or(i64::MAX));
    let built = Cookie::build((full_name, value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .max_age(max_age)
        .build();
    // Names and values are the layer's own base64url texts: always a valid header value.
    HeaderValue::from_str(&built.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for c in cookies {
            map.append(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        map
    }

    #[test]
    fn reads_plain_and_host_prefixed_cookies() {
        assert_eq!(
            read(&headers(&["a=1; sg_pass=xyz"]), PASS, false),
            Some("xyz")
        );
        assert_eq!(read(&headers(&["a=1; sg_pass=xyz"]), PASS, true), None);
        assert_eq!(
            read(&headers(&["sg_pass=p; __Host-sg_pass=h"]), PASS, true),
            Some("h")
        );
        assert_eq!(
            read(&headers(&["__Host-sg_pass=h; sg_pass=p"]), PASS, false),
            Some("h")
        );
        assert_eq!(
            read(&headers(&["sg_pass=p", "__Host-sg_pass=h"]), PASS, false),
            Some("h")
        );
        assert_eq!(read(&headers(&["sg_passport=1"]), PASS, false), None);
        assert_eq!(read(&headers(&["x__Host-sg_pass=1"]), PASS, false), None);
        assert_eq!(
            read(
                &headers(&[&format!("sg_pass={}", "a".repeat(300))]),
                PASS,
                false
            ),
            None
        );
        assert_eq!(
            read(&headers(&["garbage;;=;sg_visitor=v"]), VISITOR, false),
            Some("v")
        );
    }

    #[test]
    fn set_cookies_carry_the_attributes() {
        let plain = set(PASS, "abc", false, 60);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("sg_pass=abc"), "{plain}");
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(plain.contains(attr), "{plain} lacks {attr}");
        }
        assert!(!plain.contains("Secure"), "{plain}");
        let secure = set(PASS, "abc", true, 60);
        let secure = secure.to_str().unwrap();
        assert!(secure.starts_with("__Host-sg_pass=abc") && secure.contains("Secure"));
        assert!(!secure.contains("Domain"), "{secure}");
    }
}
