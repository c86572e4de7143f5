//! Which requests are gated: a request path in its canonical form, matched against the gated
//! prefixes on segment boundaries.
//!
//! The canonical form is what any upstream framework could take the path to mean, folded
//! together: percent-escapes decoded (repeatedly, so a double-encoded path does not slip past),
//! backslashes read as slashes, `;parameters` dropped from each segment (as servlet containers
//! do), empty and `.` segments removed, `..` resolved, ASCII case folded. A path that any of
//! these readings puts under a gated prefix is gated; gating a path the upstream would read
//! differently only sends it through the room, never around it. The request itself is
//! forwarded unchanged.

/// How many times escapes are decoded before the path is taken as it is.
const MAX_DECODES: usize = 4;

/// The canonical form of a request path (see the module docs).
pub fn canonical(path: &str) -> String {
    let mut text = path.as_bytes().to_vec();
    for _ in 0..MAX_DECODES {
        let decoded = decode_once(&text);
        if decoded == text {
            break;
        }
        text = decoded;
    }
    let text = String::from_utf8_lossy(&text).replace('\\', "/");
    let mut segments: Vec<String> = Vec::new();
    for raw in text.split('/') {
        let segment = raw.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s.to_ascii_lowercase()),
        }
    }
    let mut out = String::with_capacity(text.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn decode_once(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A gated prefix from the configuration, in canonical form: it must start with `/` and hold
/// no query, fragment, escape or space; a trailing `/` is dropped (`"/"` gates everything).
///
/// # Errors
/// What is wrong with `text`, to show under the key `gated`.
pub fn gated_prefix(text: &str) -> Result<String, String> {
    let usable = text.starts_with('/')
        && text.len() <= 1024
        && !text
            .bytes()
            .any(|b| b"?#%\\;".contains(&b) || b.is_ascii_whitespace() || b.is_ascii_control());
    if !usable {
        return Err(format!(
            "{text:?} is not a path prefix: give one like \"/register\" (leading '/', no '?', '#', '%', ';', '\\' or spaces)"
        ));
    }
    Ok(canonical(text))
}

/// Whether canonical path `path` is `prefix` or below it (`/register` covers `/register` and
/// `/register/step2`, not `/registered`).
pub fn is_under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a request for raw path `path` is gated by any of `prefixes` (canonical).
pub fn is_gated(path: &str, prefixes: &[String]) -> bool {
    if prefixes.is_empty() {
        return false;
    }
    if is_plain(path) {
        // Nothing to decode or resolve: only case is folded, without a copy.
        return prefixes.iter().any(|p| {
            p == "/"
                || path
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p))
                    && path[p.len()..].is_empty_or_slash()
        });
    }
    let path = canonical(path);
    prefixes.iter().any(|p| is_under(&path, p))
}

/// Whether `path` reads the same in every way the module docs list, but for case: no escape,
/// backslash or `;`, no empty, `.` or `..` segment.
fn is_plain(path: &str) -> bool {
    path.starts_with('/')
        && !path.bytes().any(|b| matches!(b, b'%' | b'\\' | b';'))
        && path[1..].split('/').all(|seg| !matches!(seg, "." | ".."))
        && !path[1..].split('/').rev().skip(1).any(str::is_empty)
}

trait Rest {
    fn is_empty_or_slash(&self) -> bool;
}

impl Rest for str {
    fn is_empty_or_slash(&self) -> bool {
        self.is_empty() || self.starts_with('/')
    }
}

#[cfg(test)]
mod tests {
    use super::{canonical, gated_prefix, is_gated};

    fn gated(path: &str) -> bool {
        let prefixes = vec![
            gated_prefix("/register").unwrap(),
            gated_prefix("/Appointments/").unwrap(),
        ];
        is_gated(path, &prefixes)
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(gated("/register"));
        assert!(gated("/register/"));
        assert!(gated("/register/step2?x=1"));
        assert!(gated("/appointments/hold"));
        assert!(!gated("/registered"));
        assert!(!gated("/"));
        assert!(!gated("/static/app.js"));
        assert!(!gated("/reg"));
    }

    #[test]
    fn every_reading_of_a_gated_path_is_gated() {
        for path in [
            "//register",
            "/REGISTER",
            "/%72egister",
            "/%2572egister",
            "/%252572egister",
            "/x/../register",
            "/./register",
            "/static/..%2fregister",
            "/static/..%5cregister",
            "\\register",
            "/register;jsessionid=1",
            "/register%3bx",
            "/%2e%2e/register",
        ] {
            assert!(gated(path), "{path} slipped past the gate");
        }
    }

    #[test]
    fn canonical_paths_are_rooted_and_bounded() {
        assert_eq!(canonical(""), "/");
        assert_eq!(canonical("/.."), "/");
        assert_eq!(canonical("/a//b/./c/.."), "/a/b");
        assert_eq!(canonical("/%zz%4"), "/%zz%4");
        // Every segment counts, however many come before the `..`s that undo them.
        let deep = format!("/a/{}{}register", "x/".repeat(3000), "../".repeat(3001));
        assert_eq!(canonical(&deep), "/register");
    }

    #[test]
    fn the_quick_path_agrees_with_the_canonical_one() {
        let prefixes = vec![
            gated_prefix("/register").unwrap(),
            gated_prefix("/a/b").unwrap(),
        ];
        for path in [
            "/register",
            "/Register/x",
            "/registered",
            "/a/b",
            "/a/bc",
            "/a",
            "/",
            "/a/b/",
            "/x/register",
            "/register/",
            "/A/B/c",
            "/register//x",
            "/a//b",
            "/reg",
        ] {
            let slow = prefixes
                .iter()
                .any(|p| super::is_under(&canonical(path), p));
            assert_eq!(is_gated(path, &prefixes), slow, "{path}");
        }
        assert!(super::is_plain("/register/x"));
        assert!(
            !super::is_plain("//register")
                && !super::is_plain("/a/./b")
                && !super::is_plain("/a/..")
        );
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in ["register", "/a?b", "/a#b", "/a%20", "/a b", "", "/a;b"] {
            assert!(gated_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(gated_prefix("/").unwrap(), "/");
        assert!(is_gated("/anything", &[gated_prefix("/").unwrap()]));
    }
}
