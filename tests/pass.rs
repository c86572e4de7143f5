//! Signed passes: every error, every changed byte, key rotation, and the text's shape.
#![cfg(all(feature = "pass", not(loom)))]

use proptest::prelude::*;
use surgegate::pass::{
    KeyError, KeyId, Keyring, MAX_KEYS, MIN_SECRET_BYTES, PASS_TEXT_LEN, PassClaims, PassError,
    VISITOR_TEXT_LEN,
};
use surgegate::{TicketToken, VisitorId};

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn claims() -> PassClaims {
    PassClaims {
        room: 1,
        visitor: VisitorId(77),
        token: TicketToken::from_u128(0x00ff_00ff_1234_5678_9abc_def0_0f0f_f0f0),
        issued_at_unix_s: 1_700_000_000,
        expires_at_unix_s: 1_700_000_600,
    }
}

fn keyring(id: u32, fill: u8) -> Keyring {
    Keyring::new(KeyId(id), &[fill; MIN_SECRET_BYTES]).expect("a 32-byte secret is accepted")
}

const NOW: u64 = 1_700_000_100;

#[test]
fn a_signed_pass_verifies_to_its_claims_until_it_expires() {
    let keys = keyring(1, 3);
    let text = keys.sign(&claims());
    assert_eq!(keys.verify(&text, NOW), Ok(claims()));
    assert_eq!(keys.verify(&text, 1_700_000_599), Ok(claims()));
    assert_eq!(keys.verify(&text, 1_700_000_600), Err(PassError::Expired));
    assert_eq!(keys.verify(&text, u64::MAX), Err(PassError::Expired));
}

#[test]
fn the_text_is_url_cookie_and_header_safe_and_short() {
    let text = keyring(1, 3).sign(&claims());
    assert_eq!(text.len(), PASS_TEXT_LEN);
    assert!(text.len() <= 256);
    assert!(text.bytes().all(|b| BASE64URL.contains(&b)), "{text}");
}

#[test]
fn changing_any_character_to_any_other_gives_an_error() {
    let keys = keyring(1, 3);
    let text = keys.sign(&claims());
    let mut tried = 0;
    for at in 0..text.len() {
        for &with in BASE64URL.iter().chain(b"=+/ .\0\xff") {
            let mut bytes = text.as_bytes().to_vec();
            if bytes[at] == with {
                continue;
            }
            bytes[at] = with;
            let changed = String::from_utf8_lossy(&bytes);
            let result = keys.verify(&changed, NOW);
            assert!(
                result.is_err(),
                "changed byte {at} to {with:#x} verified: {result:?}"
            );
            tried += 1;
        }
    }
    assert!(tried > 108 * 63, "{tried}");
}

#[test]
fn each_error_has_its_cause() {
    let keys = keyring(1, 3);
    let text = keys.sign(&claims());
    assert_eq!(keys.verify("", NOW), Err(PassError::Malformed));
    assert_eq!(keys.verify(&text[1..], NOW), Err(PassError::Malformed));
    assert_eq!(
        keys.verify(&format!("{text}A"), NOW),
        Err(PassError::Malformed)
    );
    assert_eq!(
        keys.verify(&"*".repeat(PASS_TEXT_LEN), NOW),
        Err(PassError::Malformed)
    );
    // A longer text of the same key is refused by its length, whatever it holds.
    assert_eq!(
        keys.verify(&text.repeat(1000), NOW),
        Err(PassError::Malformed)
    );
    // The first character carries the top six bits of the version byte: "B" makes it 4 or more.
    let other_version = format!("B{}", &text[1..]);
    assert_eq!(keys.verify(&other_version, NOW), Err(PassError::Malformed));
    // Signed by a key this keyring does not hold.
    let stranger = keyring(9, 3).sign(&claims());
    assert_eq!(keys.verify(&stranger, NOW), Err(PassError::UnknownKey));
    // Same key id, another secret: a forgery.
    let forged = keyring(1, 4).sign(&claims());
    assert_eq!(keys.verify(&forged, NOW), Err(PassError::BadSignature));
    // Expired but otherwise genuine.
    assert_eq!(keys.verify(&text, u64::MAX), Err(PassError::Expired));
    // A forged pass is refused as forged even when its expiry has passed (no oracle on time).
    assert_eq!(keys.verify(&forged, u64::MAX), Err(PassError::BadSignature));
}

#[test]
fn a_rotation_accepts_old_passes_and_signs_new_ones_with_the_new_key() {
    let old = keyring(1, 3);
    let old_pass = old.sign(&claims());
    let rotated = keyring(2, 5)
        .with_verify_key(KeyId(1), &[3; MIN_SECRET_BYTES])
        .expect("a second key");
    assert_eq!(rotated.signing_key(), KeyId(2));
    assert_eq!(rotated.verify(&old_pass, NOW), Ok(claims()));
    let new_pass = rotated.sign(&claims());
    assert_ne!(new_pass, old_pass);
    assert_eq!(rotated.verify(&new_pass, NOW), Ok(claims()));
    // Nodes not yet rotated do not accept the new key's passes.
    assert_eq!(old.verify(&new_pass, NOW), Err(PassError::UnknownKey));
    // Once the old key is dropped, its passes are unknown.
    assert_eq!(
        keyring(2, 5).verify(&old_pass, NOW),
        Err(PassError::UnknownKey)
    );
}

#[test]
fn keyring_errors_change_nothing_and_say_what_to_do() {
    let short = Keyring::new(KeyId(1), &[1; MIN_SECRET_BYTES - 1]).unwrap_err();
    assert_eq!(
        short,
        KeyError::ShortSecret {
            key: KeyId(1),
            len: 31
        }
    );
    assert!(short.to_string().contains("at least 32"), "{short}");
    let keys = keyring(1, 3);
    let duplicate = keys
        .clone()
        .with_verify_key(KeyId(1), &[4; 32])
        .unwrap_err();
    assert_eq!(duplicate, KeyError::DuplicateKey(KeyId(1)));
    let short_verify = keys.clone().with_verify_key(KeyId(2), &[4; 8]).unwrap_err();
    assert!(matches!(short_verify, KeyError::ShortSecret { len: 8, .. }));
    let mut full = keys.clone();
    for id in 2..=MAX_KEYS as u32 {
        full = full.with_verify_key(KeyId(id), &[id as u8; 32]).unwrap();
    }
    let too_many = full
        .clone()
        .with_verify_key(KeyId(99), &[9; 32])
        .unwrap_err();
    assert_eq!(too_many, KeyError::TooManyKeys);
    // The full keyring still verifies with every key it holds and signs with the first.
    assert_eq!(full.signing_key(), KeyId(1));
    for id in 2..=MAX_KEYS as u32 {
        let text = keyring(id, id as u8).sign(&claims());
        assert_eq!(full.verify(&text, NOW), Ok(claims()), "key {id}");
    }
}

#[test]
fn a_visitor_text_names_its_visitor_and_is_never_a_pass() {
    let keys = keyring(1, 3);
    let text = keys.sign_visitor(4, VisitorId(u64::MAX));
    assert_eq!(text.len(), VISITOR_TEXT_LEN);
    assert!(text.bytes().all(|b| BASE64URL.contains(&b)), "{text}");
    assert_eq!(keys.verify_visitor(&text), Ok((4, VisitorId(u64::MAX))));
    assert_eq!(keys.verify(&text, 0), Err(PassError::Malformed));
    assert_eq!(
        keys.verify_visitor(&keys.sign(&claims())),
        Err(PassError::Malformed)
    );
    assert_eq!(
        keyring(2, 3).verify_visitor(&text),
        Err(PassError::UnknownKey)
    );
    assert_eq!(
        keyring(1, 4).verify_visitor(&text),
        Err(PassError::BadSignature)
    );
    for at in 0..text.len() {
        for &with in BASE64URL {
            let mut bytes = text.as_bytes().to_vec();
            if bytes[at] != with {
                bytes[at] = with;
                let changed = String::from_utf8(bytes).unwrap();
                assert!(
                    keys.verify_visitor(&changed).is_err(),
                    "byte {at} to {with:#x}"
                );
            }
        }
    }
}

#[test]
fn a_place_text_names_its_place_and_is_nothing_else() {
    let keys = keyring(1, 3);
    let token = claims().token;
    let text = keys.sign_place(7, VisitorId(9), token, 123_456);
    assert_eq!(text.len(), surgegate::pass::PLACE_TEXT_LEN);
    assert_eq!(
        keys.verify_place(&text),
        Ok((7, VisitorId(9), token, 123_456))
    );
    assert_eq!(keys.verify(&text, 0), Err(PassError::Malformed));
    assert_eq!(keys.verify_visitor(&text), Err(PassError::Malformed));
    assert_eq!(
        keys.verify_place(&keys.sign(&claims())),
        Err(PassError::Malformed)
    );
    assert_eq!(
        keyring(1, 4).verify_place(&text),
        Err(PassError::BadSignature)
    );
    for at in 0..text.len() {
        let mut bytes = text.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        assert!(keys.verify_place(&changed).is_err(), "byte {at}");
    }
}

#[test]
fn a_place_text_carries_its_issue_time_and_ages_out() {
    use surgegate::pass::PlaceClaims;
    let keys = keyring(1, 3);
    let place = PlaceClaims {
        room: 7,
        visitor: VisitorId(9),
        token: claims().token,
        seq: 123_456,
        issued_at_unix_s: 1_800_000_000,
    };
    let text = keys.sign_place_at(&place);
    assert_eq!(text.len(), surgegate::pass::PLACE_TEXT_LEN);
    assert_eq!(keys.verify_place_at(&text, 1_800_000_000, 600), Ok(place));
    assert_eq!(keys.verify_place_at(&text, 1_800_000_599, 600), Ok(place));
    assert_eq!(
        keys.verify_place_at(&text, 1_800_000_600, 600),
        Err(PassError::Expired)
    );
    let skew = surgegate::pass::MAX_CLOCK_SKEW_S;
    assert_eq!(
        keys.verify_place_at(&text, 1_800_000_000 - skew, 600),
        Ok(place)
    );
    assert_eq!(
        keys.verify_place_at(&text, 1_800_000_000 - skew - 1, 600),
        Err(PassError::Expired),
        "from the future"
    );
    assert_eq!(
        keys.verify_place(&text),
        Ok((7, VisitorId(9), place.token, 123_456))
    );
    // A place text is never a pass, though both are 108 characters.
    assert_eq!(text.len(), surgegate::pass::PASS_TEXT_LEN);
    assert_eq!(keys.verify(&text, 0), Err(PassError::Malformed));
}

proptest! {
    #[test]
    fn any_claims_round_trip(
        room: u32, visitor: u64, token: u128, issued: u64, expires in 1u64..,
        key: u32, secret in proptest::collection::vec(any::<u8>(), 32..200),
    ) {
        let keys = Keyring::new(KeyId(key), &secret).unwrap();
        let claims = PassClaims {
            room,
            visitor: VisitorId(visitor),
            token: TicketToken::from_u128(token),
            issued_at_unix_s: issued,
            expires_at_unix_s: expires,
        };
        let text = keys.sign(&claims);
        prop_assert_eq!(text.len(), PASS_TEXT_LEN);
        prop_assert_eq!(keys.verify(&text, expires - 1), Ok(claims));
        prop_assert_eq!(keys.verify(&text, expires), Err(PassError::Expired));
    }

    #[test]
    fn any_text_is_an_error_or_the_signed_form_of_its_claims(text in ".{0,120}") {
        let keys = keyring(1, 3);
        if let Ok(claims) = keys.verify(&text, 0) {
            prop_assert_eq!(keys.sign(&claims), text);
        }
    }
}
