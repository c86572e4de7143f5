//! Pass texts, valid and altered, through `Keyring::verify`: never a panic; a valid pass with
//! any byte changed is always an error; and any text that verifies is exactly the text that
//! `sign` makes of its claims (one text per pass); the same for visitor texts.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use surgegate::pass::{KeyId, Keyring, PassClaims};
use surgegate::{TicketToken, VisitorId};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    room: u32,
    visitor: u64,
    token: u128,
    issued_at_unix_s: u64,
    expires_at_unix_s: u64,
    now_unix_s: u64,
    /// Sign with the old key (verify-only on the keyring under test) instead of the new one.
    old_key: bool,
    /// (position, new byte) applied to the signed text.
    edits: Vec<(u8, u8)>,
    /// Also verified as it is.
    raw: &'a str,
}

fuzz_target!(|input: Input| {
    let keys = Keyring::new(KeyId(2), &[0x5a; 32])
        .and_then(|k| k.with_verify_key(KeyId(1), &[0xa5; 48]))
        .expect("valid keys");
    let old = Keyring::new(KeyId(1), &[0xa5; 48]).expect("a valid key");
    let signer = if input.old_key { &old } else { &keys };
    let claims = PassClaims {
        room: input.room,
        visitor: VisitorId(input.visitor),
        token: TicketToken::from_u128(input.token),
        issued_at_unix_s: input.issued_at_unix_s,
        expires_at_unix_s: input.expires_at_unix_s,
    };
    let signed = signer.sign(&claims);
    let mut bytes = signed.clone().into_bytes();
    for (at, with) in &input.edits {
        let at = usize::from(*at) % bytes.len();
        bytes[at] = *with;
    }
    let edited = String::from_utf8_lossy(&bytes);
    let result = keys.verify(&edited, input.now_unix_s);
    if edited == signed {
        assert_eq!(
            result.is_ok(),
            input.now_unix_s < input.expires_at_unix_s,
            "{result:?}"
        );
        if let Ok(got) = result {
            assert_eq!(got, claims);
        }
    } else {
        assert!(result.is_err(), "an altered pass verified: {edited:?}");
    }
    if let Ok(got) = keys.verify(input.raw, input.now_unix_s) {
        assert!(
            keys.sign(&got) == input.raw || old.sign(&got) == input.raw,
            "a text that verified is not the signed form of its claims: {:?}",
            input.raw
        );
    }
    if let Ok((room, visitor)) = keys.verify_visitor(input.raw) {
        assert!(
            keys.sign_visitor(room, visitor) == input.raw
                || old.sign_visitor(room, visitor) == input.raw,
            "a visitor text that verified is not the signed form of its visitor: {:?}",
            input.raw
        );
    }
    let visitor_text = signer.sign_visitor(input.room, VisitorId(input.visitor));
    assert_eq!(
        keys.verify_visitor(&visitor_text),
        Ok((input.room, VisitorId(input.visitor)))
    );
});
