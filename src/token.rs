//! Unguessable 128-bit tokens and their text form.
//!
//! A token is the only proof that a hold, a booking, a ticket or a pass is yours, so it is drawn
//! from a cryptographically secure generator (`rand`'s thread-local ChaCha12, seeded and reseeded
//! from the operating system). Its text is exactly 32 lowercase hex digits, safe in URLs, cookies
//! and headers; parsing accepts exactly 32 hex digits (either case) and nothing else, and never
//! panics.

use std::hash::Hasher;

use rand::RngExt;
use thiserror::Error;

/// Why a text is not a token. A token's text is exactly 32 hexadecimal digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenParseError {
    /// The text does not have exactly 32 bytes.
    #[error(
        "a token is exactly 32 hex digits, but this text has {len} bytes: pass the token text unchanged"
    )]
    WrongLength {
        /// The length of the rejected text, in bytes.
        len: usize,
    },
    /// The text has a byte that is not a hex digit.
    #[error(
        "a token is exactly 32 hex digits, but byte {index} is not one: pass the token text unchanged"
    )]
    NotHex {
        /// The position of the first offending byte.
        index: usize,
    },
}

/// Hashes a token by taking its high 64 bits, which are CSPRNG output in every token: keys that
/// are already uniformly random need no mixing. The room's map of passes by ticket token uses it;
/// only tokens the room drew itself are ever inserted there (a client's token is only looked up),
/// so no caller can choose where a key lands.
#[derive(Default, Clone, Copy)]
pub(crate) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; fold anything else in case a future key type needs it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        // The high 64 bits: the low ones are not random (a ticket's low 32 bits are its line
        // index, a hold's its shard and slab entry).
        self.0 = (n >> 64) as u64;
    }
}

/// 128 bits of CSPRNG output.
pub(crate) fn random_u128() -> u128 {
    rand::rng().random::<u128>()
}

/// Parses exactly 32 hex digits into a `u128`.
pub(crate) fn parse_hex128(text: &str) -> Result<u128, TokenParseError> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return Err(TokenParseError::WrongLength { len: bytes.len() });
    }
    let mut value: u128 = 0;
    for (index, &b) in bytes.iter().enumerate() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(TokenParseError::NotHex { index }),
        };
        value = (value << 4) | u128::from(digit);
    }
    Ok(value)
}

/// Declares a token newtype: `Copy + Eq + Hash + Debug + Display + FromStr`, 32 lowercase hex digits.
macro_rules! token_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) u128);

        impl $name {
            /// The token as a 128-bit integer (for storing it in a binary column).
            pub fn to_u128(self) -> u128 {
                self.0
            }

            /// A token from a stored 128-bit integer (the inverse of `to_u128`).
            pub fn from_u128(bits: u128) -> Self {
                Self(bits)
            }
        }

        /// Shows only the first 8 hex digits: a token is a credential and should not end up in
        /// logs whole. `Display` gives the full text.
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!(stringify!($name), "({:08x}…)"), (self.0 >> 96) as u32)
            }
        }

        /// Exactly 32 lowercase hex digits.
        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        /// As its text: 32 lowercase hex digits.
        #[cfg(feature = "serde")]
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        /// From its text (32 hex digits); anything else is an error.
        #[cfg(feature = "serde")]
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <::std::string::String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }

        /// Accepts exactly 32 hex digits (either case) and nothing else: no sign, no prefix,
        /// no whitespace.
        impl ::core::str::FromStr for $name {
            type Err = $crate::token::TokenParseError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::token::parse_hex128(text).map($name)
            }
        }
    };
}
pub(crate) use token_type;

#[cfg(test)]
mod tests {
    use super::*;

    token_type!(
        /// A test token.
        TestToken
    );

    #[test]
    fn text_is_32_lowercase_hex_and_round_trips() {
        for _ in 0..1000 {
            let t = TestToken(random_u128());
            let text = t.to_string();
            assert_eq!(text.len(), 32);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert_eq!(text.parse::<TestToken>(), Ok(t));
        }
        assert_eq!(TestToken(0).to_string(), "0".repeat(32));
        assert_eq!(TestToken(u128::MAX).to_string(), "f".repeat(32));
    }

    #[test]
    fn parse_accepts_upper_case() {
        let t: TestToken = "ABCDEF0123456789abcdef0123456789".parse().unwrap();
        assert_eq!(t.to_string(), "abcdef0123456789abcdef0123456789");
    }

    #[test]
    fn parse_rejects_everything_else() {
        let long = "a".repeat(33);
        let multibyte = "é".repeat(16);
        let cases: &[(&str, TokenParseError)] = &[
            ("", TokenParseError::WrongLength { len: 0 }),
            ("abc", TokenParseError::WrongLength { len: 3 }),
            (long.as_str(), TokenParseError::WrongLength { len: 33 }),
            (
                "+bcdef0123456789abcdef012345678",
                TokenParseError::WrongLength { len: 31 },
            ),
            (
                "+bcdef0123456789abcdef0123456789",
                TokenParseError::NotHex { index: 0 },
            ),
            (
                "0x cdef0123456789abcdef0123456789",
                TokenParseError::WrongLength { len: 33 },
            ),
            (
                "0xcdef0123456789abcdef0123456789",
                TokenParseError::NotHex { index: 1 },
            ),
            (
                " bcdef0123456789abcdef0123456789",
                TokenParseError::NotHex { index: 0 },
            ),
            (
                "abcdef0123456789abcdef012345678g",
                TokenParseError::NotHex { index: 31 },
            ),
            // 31 characters but 32 bytes: multi-byte text is rejected without panicking.
            (multibyte.as_str(), TokenParseError::NotHex { index: 0 }),
        ];
        for (text, err) in cases {
            assert_eq!(text.parse::<TestToken>(), Err(*err), "{text:?}");
        }
    }

    #[test]
    fn debug_does_not_show_the_whole_token() {
        let t = TestToken(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(format!("{t:?}"), "TestToken(01234567…)");
    }

    #[test]
    fn integer_form_round_trips() {
        let t = TestToken(random_u128());
        assert_eq!(TestToken::from_u128(t.to_u128()), t);
    }

    #[test]
    fn tokens_differ() {
        let a = random_u128();
        let b = random_u128();
        assert_ne!(a, b, "two CSPRNG draws of 128 bits collided");
    }
}
