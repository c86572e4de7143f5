//! The Lua scripts, assembled in one place: every script opens with a header written here that
//! names its keys (`local CAP, HELD, … = KEYS[1], KEYS[2], …`, in the order the Rust side
//! passes them) and sets the constants the scripts share, so that the key order and the
//! budgets are written once, in Rust, for the scripts and the calls alike.

use redis::Script;

/// The keys of one branch, under its hash tag `{ns:b:<branch>}`, in the order every branch
/// script receives them (`branch_prelude.lua` says what each holds).
pub(crate) const BRANCH_KEYS: [&str; 18] = [
    "cap", "held", "booked", "open", "holds", "exp", "bookings", "holder", "lapsed", "closed",
    "fenced", "quotas", "kept", "sbline", "sbreq", "offers", "offexp", "sbidx",
];

/// The keys of the room, under its hash tag `{ns:room}`, in the order every room script
/// receives them (`room_prelude.lua` says what each holds).
pub(crate) const ROOM_KEYS: [&str; 9] = [
    "cfg",
    "state",
    "line",
    "deadlines",
    "visitors",
    "tickets",
    "passes",
    "lapses",
    "ended",
];

/// The keys of an applicant: its counts, `{ns:a:<applicant>}` (the tag alone), and its standby
/// request, `{ns:a:<applicant>}:standby`.
pub(crate) const APPLICANT_KEYS: [&str; 2] = ["counts", "standby"];

/// Lapsed holds one branch script reclaims at most before its own work (the rest on the next
/// calls, or by a sweep): bounded work per call.
pub(crate) const RECLAIM_BUDGET: u32 = 10_000;
/// Lapsed hold tokens a branch remembers, to tell `Expired` from `UnknownToken`.
const LAPSED_KEPT: u32 = 100_000;
/// Slots one availability reading returns at most, from the start of its range.
pub(crate) const RANGE_MAX: u32 = 4_096;
/// Events (admissions, lapses) one room call handles at most; the rest on the next calls.
pub(crate) const EVENT_BUDGET: u32 = 4_096;
/// Ended tickets a room remembers, to tell `Expired` and to refuse taking an ended place back.
const ENDED_KEPT: u32 = 100_000;
/// How much younger than the latest forgotten ended ticket a place text must be to take a
/// place back, in microseconds: the nodes' clock skew ([`MAX_CLOCK_SKEW_S`](crate::pass::MAX_CLOCK_SKEW_S)),
/// since the text's issue time is its node's and the ended times are the server's.
const PLACE_SKEW_US: u32 = 300_000_000;
const _: () = assert!(PLACE_SKEW_US as u64 == crate::pass::MAX_CLOCK_SKEW_S * 1_000_000);

const BRANCH_PRELUDE: &str = include_str!("scripts/branch_prelude.lua");
const STANDBY_PRELUDE: &str = include_str!("scripts/standby_prelude.lua");
const ROOM_PRELUDE: &str = include_str!("scripts/room_prelude.lua");

/// `local A, B = KEYS[1], KEYS[2]` for `keys`, then `local NAME = value` for each constant.
fn header(keys: &[&str], constants: &[(&str, u64)]) -> String {
    let names: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
    let slots: Vec<String> = (1..=keys.len()).map(|i| format!("KEYS[{i}]")).collect();
    let mut out = format!("local {} = {}\n", names.join(", "), slots.join(", "));
    for (name, value) in constants {
        out.push_str(&format!("local {name} = {value}\n"));
    }
    out
}

/// The book's settings every branch script reads: how long a hold (and a standby offer)
/// lasts, and how many standby requests one branch's line holds at most.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BranchSettings {
    pub(crate) hold_ttl_ms: u64,
    pub(crate) max_line: u32,
}

/// A branch script: the header, the branch prelude, the standby prelude, then `body`.
pub(crate) fn branch(body: &str, settings: BranchSettings) -> Script {
    let constants = [
        ("RECLAIM_BUDGET", u64::from(RECLAIM_BUDGET)),
        ("LAPSED_KEPT", u64::from(LAPSED_KEPT)),
        ("RANGE_MAX", u64::from(RANGE_MAX)),
        ("HOLD_TTL_MS", settings.hold_ttl_ms),
        ("MAX_LINE", u64::from(settings.max_line)),
    ];
    let header = header(&BRANCH_KEYS, &constants);
    Script::new(&format!(
        "{header}{BRANCH_PRELUDE}\n{STANDBY_PRELUDE}\n{body}"
    ))
}

/// The applicant script: its key named.
pub(crate) fn applicant() -> Script {
    let header = header(&APPLICANT_KEYS, &[]);
    Script::new(&format!(
        "{header}{}",
        include_str!("scripts/applicant.lua")
    ))
}

/// The room's call script: the header, the room prelude, then the calls.
pub(crate) fn room_call() -> Script {
    let constants = [
        ("EVENT_BUDGET", u64::from(EVENT_BUDGET)),
        ("ENDED_KEPT", u64::from(ENDED_KEPT)),
        ("PLACE_SKEW_US", u64::from(PLACE_SKEW_US)),
    ];
    let header = header(&ROOM_KEYS, &constants);
    Script::new(&format!(
        "{header}{ROOM_PRELUDE}\n{}",
        include_str!("scripts/room_call.lua")
    ))
}

/// The room's setup script (the first node writes the settings): its keys named.
pub(crate) fn room_setup() -> Script {
    let header = header(&ROOM_KEYS, &[]);
    Script::new(&format!(
        "{header}{}",
        include_str!("scripts/room_setup.lua")
    ))
}

#[cfg(test)]
mod tests {
    use super::{BRANCH_KEYS, header};

    #[test]
    fn the_header_names_every_key_in_order() {
        assert_eq!(
            header(&["cap", "held"], &[("BUDGET", 7)]),
            "local CAP, HELD = KEYS[1], KEYS[2]\nlocal BUDGET = 7\n"
        );
        let branch = header(&BRANCH_KEYS, &[]);
        assert!(branch.starts_with("local CAP, HELD, BOOKED, OPEN, HOLDS, EXP,"));
        assert!(branch.trim_end().ends_with("KEYS[18]"));
    }

    #[test]
    fn no_script_reads_a_key_by_its_number() {
        for (name, text) in [
            ("branch_prelude", include_str!("scripts/branch_prelude.lua")),
            ("reserve", include_str!("scripts/reserve.lua")),
            ("confirm", include_str!("scripts/confirm.lua")),
            ("release", include_str!("scripts/release.lua")),
            ("capacity", include_str!("scripts/capacity.lua")),
            ("read", include_str!("scripts/read.lua")),
            ("settle", include_str!("scripts/settle.lua")),
            (
                "standby_prelude",
                include_str!("scripts/standby_prelude.lua"),
            ),
            ("standby", include_str!("scripts/standby.lua")),
            ("applicant", include_str!("scripts/applicant.lua")),
            ("room_prelude", include_str!("scripts/room_prelude.lua")),
            ("room_call", include_str!("scripts/room_call.lua")),
            ("room_setup", include_str!("scripts/room_setup.lua")),
        ] {
            assert!(!text.contains("KEYS["), "{name} reads KEYS[n]");
            let code: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .flat_map(|l| l.split(|c: char| !c.is_ascii_digit()))
                .collect();
            for budget in ["10000", "100000", "4096"] {
                assert!(!code.contains(&budget), "{name} writes {budget} itself");
            }
        }
    }
}
