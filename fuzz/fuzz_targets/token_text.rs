//! Arbitrary text through both tokens' `FromStr`: never a panic; accepted exactly when it is 32
//! hex digits; and every accepted text round-trips (its lowercase form is what `Display` prints).
#![no_main]

use libfuzzer_sys::fuzz_target;
use surgegate::{HoldToken, TicketToken};

fuzz_target!(|text: &str| {
    let is_token_text = text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    match text.parse::<HoldToken>() {
        Ok(t) => {
            assert!(is_token_text, "accepted {text:?}");
            assert_eq!(t.to_string(), text.to_ascii_lowercase());
            assert_eq!(t.to_string().parse::<HoldToken>(), Ok(t));
            assert_eq!(HoldToken::from_u128(t.to_u128()), t);
        }
        Err(e) => {
            assert!(!is_token_text, "refused {text:?}: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
    match text.parse::<TicketToken>() {
        Ok(t) => {
            assert!(is_token_text, "accepted {text:?}");
            assert_eq!(t.to_string(), text.to_ascii_lowercase());
            assert_eq!(t.to_string().parse::<TicketToken>(), Ok(t));
        }
        Err(_) => assert!(!is_token_text, "refused {text:?}"),
    }
});
