//! The secret and the two tokens, read from their files. Their values never appear in a
//! `Debug` output, a log line or an error message.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The fewest bytes a secret holds.
pub const MIN_SECRET_BYTES: usize = 32;
/// The fewest characters a token holds.
pub const MIN_TOKEN_CHARS: usize = 32;
/// The most bytes read from a secret or token file.
const MAX_FILE_BYTES: u64 = 4096;

/// Key material for passes and visitor texts (every node of one site holds the same).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A bearer token, kept as its SHA-256 digest: comparisons hash the presented text first, so
/// the time they take says nothing about the token, and the token itself is not kept.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl Token {
    /// The token of text `text` (for tests and for reading files).
    pub fn from_text(text: &str) -> Token {
        Token {
            digest: Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// Whether `presented` is this token, in constant time. An empty text never matches (a
    /// token is at least [`MIN_TOKEN_CHARS`] characters).
    pub fn matches(&self, presented: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        !presented.is_empty() && bool::from(self.digest.ct_eq(&given))
    }

    /// Whether two tokens are the same.
    pub fn same_as(&self, other: &Token) -> bool {
        bool::from(self.digest.ct_eq(&other.digest))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{} is longer than {MAX_FILE_BYTES} bytes: it should hold one secret",
            path.display()
        ));
    }
    // A trailing newline (as `echo` and editors write) is not part of the value.
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    Ok(bytes)
}

/// The secret in `path`: at least [`MIN_SECRET_BYTES`] bytes once trailing whitespace is cut.
pub(crate) fn read_secret(path: &Path) -> Result<Secret, String> {
    let bytes = read_small(path).map_err(|e| {
        format!("{e}; write {MIN_SECRET_BYTES} or more random bytes there, e.g. `openssl rand -hex 32 > FILE`")
    })?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "{} holds {} bytes; a secret needs at least {MIN_SECRET_BYTES}: e.g. `openssl rand -hex 32 > FILE`",
            path.display(),
            bytes.len()
        ));
    }
    Ok(Secret(bytes))
}

/// The token in `path`: at least [`MIN_TOKEN_CHARS`] visible ASCII characters, no spaces.
pub(crate) fn read_token(path: &Path) -> Result<Token, String> {
    let bytes = read_small(path).map_err(|e| {
        format!("{e}; write a token of {MIN_TOKEN_CHARS} or more characters there, e.g. `openssl rand -hex 32 > FILE`")
    })?;
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{} holds characters a header cannot carry: use letters, digits and punctuation only",
            path.display()
        ));
    }
    if bytes.len() < MIN_TOKEN_CHARS {
        return Err(format!(
            "{} holds {} characters; a token needs at least {MIN_TOKEN_CHARS}: e.g. `openssl rand -hex 32 > FILE`",
            path.display(),
            bytes.len()
        ));
    }
    // Checked above: visible ASCII only.
    let text = String::from_utf8_lossy(&bytes);
    Ok(Token::from_text(&text))
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn tokens_match_only_themselves_and_never_empty() {
        let token = Token::from_text("a-token-of-thirty-two-characters");
        assert!(token.matches("a-token-of-thirty-two-characters"));
        assert!(!token.matches("a-token-of-thirty-two-characterS"));
        assert!(!token.matches(""));
        assert!(!Token::from_text("").matches(""));
        assert_eq!(format!("{token:?}"), "Token(..)");
    }
}
