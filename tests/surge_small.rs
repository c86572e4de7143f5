//! The launch-surge simulation (`examples/surge`) at a small size: it must account for every
//! visitor, never overbook, and give the same figures for the same seed whatever the threads.

#[path = "../examples/surge/book_side.rs"]
mod book_side;
#[path = "../examples/surge/booking.rs"]
mod booking;
#[path = "../examples/surge/calls.rs"]
mod calls;
#[path = "../examples/surge/counters.rs"]
mod counters;
#[path = "../examples/surge/modes.rs"]
mod modes;
#[path = "../examples/surge/sim.rs"]
mod sim;

fn small(threads: usize, seed: u64) -> sim::Config {
    sim::Config {
        visitors: 20_000,
        seed,
        threads,
        rate_per_second: 60,
        burst: 60,
        max_active: 600,
        branches: 40,
        days: 10,
        windows_per_day: 8,
        tail_secs: 300.0,
        cancel_after_secs: (60.0, 300.0),
        patience_secs: (2.0, 10.0),
        ..sim::Config::default()
    }
}

/// The figures that do not depend on wall time.
fn figures(r: &sim::Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in ["wall_secs", "calls_per_sec", "threads"] {
        o.remove(k);
    }
    // The samples (the chart's data) too must match.
    o.insert("samples".into(), serde_json::to_value(&r.samples).unwrap());
    v
}

#[test]
fn a_small_surge_accounts_for_everyone_and_never_overbooks() {
    let r = sim::run(&small(2, 7), |_, _| {});
    assert_eq!(r.visitors, 20_000);
    assert_eq!(
        r.room.admitted + r.room.gave_up + r.room.rejected,
        r.visitors,
        "every visitor is admitted, gives up, or is refused"
    );
    for m in &r.modes {
        assert_eq!(m.overbooked, 0, "{}", m.mode);
        assert!(m.bookings > 0 && m.bookings <= r.appointments_offered);
        // Everyone who asked got exactly one hold, or nothing: fast clients retry only until
        // they get one, and a round places each applicant at most once.
        assert_eq!(m.holds_granted + m.no_slot, r.registered, "{}", m.mode);
        assert!(m.fast_bookings <= r.fast_registered);
        // Every cancellation and every lapsed hold gives its unit back; each unit given back has
        // at most one next taker.
        assert_eq!(m.given_back, m.cancelled + m.holds_expired, "{}", m.mode);
        assert!(m.given_back_taken <= m.given_back, "{}", m.mode);
        assert!(m.fast_given_back <= m.given_back_taken, "{}", m.mode);
    }
    assert!(r.fast_registered > 0 && r.fast_registered < r.registered / 50);
    // The counters keep a fifth of every window (rounded down) until 24 h before it starts: the
    // first day's first windows open during the run, the rest stay kept.
    let cfg = small(2, 7);
    let quotas: u64 = sim::capacities(&cfg)
        .iter()
        .map(|&c| u64::from(c) / 5)
        .sum::<u64>()
        * u64::from(cfg.days * cfg.windows_per_day);
    assert_eq!(r.counters_kept + r.counters_opened, quotas);
    assert!(r.counters_opened > 0 && r.counters_kept > 0, "{r:?}");
    assert!(
        r.room.peak_line > 1_000,
        "the surge should build a line: {}",
        r.room.peak_line
    );
    assert!(
        r.room.wait_p50_s <= r.room.wait_p95_s
            && r.room.wait_p95_s <= r.room.wait_p99_s
            && r.room.wait_p99_s <= r.room.wait_max_s
    );
    // Some visitors give up: they lapse in line, or are admitted in the window before their
    // check-in lapses and never use their pass.
    let one_branch = &r.modes[0];
    let summary = (
        r.room.gave_up + r.room.unused_passes,
        one_branch.holds_expired,
        one_branch.cancelled,
        one_branch.no_slot,
    );
    assert!(
        summary.0 > 0 && summary.1 > 0 && summary.2 > 0 && summary.3 > 0,
        "(gave up, expired, cancelled, no slot) = {summary:?}"
    );
    // The reject front door turns people away in the same surge; the waiting room does not.
    assert_eq!(r.room.rejected, 0);
    assert!(r.reject_baseline_rejected > 0);
    assert_eq!(
        r.reject_baseline_admitted + r.reject_baseline_rejected,
        r.visitors
    );
    // The line never admits faster than the backend's rate: admissions per second stay within
    // burst + rate (samples are one second apart).
    assert!(
        r.samples.iter().all(|s| s.admissions_per_sec <= 120),
        "{:?}",
        r.samples.iter().map(|s| s.admissions_per_sec).max()
    );
}

#[test]
fn the_same_seed_gives_the_same_figures_with_any_number_of_threads() {
    let one = sim::run(&small(1, 99), |_, _| {});
    let three = sim::run(&small(3, 99), |_, _| {});
    assert_eq!(figures(&one), figures(&three));
    let other = sim::run(&small(1, 100), |_, _| {});
    assert_ne!(
        figures(&one),
        figures(&other),
        "a different seed should change the figures"
    );
}

/// The four appointment modes on the same registrations: alternatives place more applicants
/// than one branch; the round gives fast clients no more than their share of applicants (after
/// their always-confirm, never-cancel habits), where first come first served gives them more;
/// standby gives the units given back to those who waited for them.
#[test]
fn alternatives_place_more_and_a_round_takes_the_edge_off_speed() {
    // Scarce: about 9 000 appointments for 19 000 applicants.
    let cfg = sim::Config {
        fast_share: 0.05,
        days: 4,
        ..small(2, 11)
    };
    let r = sim::run(&cfg, |_, _| {});
    let [one, among, round, standby] = &r.modes;
    assert!(
        among.no_slot < one.no_slot && among.bookings > one.bookings,
        "alternatives {among:?} against one branch {one:?}"
    );
    let share = |m: &booking::ModeReport| m.fast_bookings as f64 / m.bookings as f64;
    let applicants = r.fast_registered as f64 / r.registered as f64;
    // Fast clients confirm every hold and never cancel; others confirm 90% and cancel 5%.
    let fair = applicants / 0.9 / 0.95;
    assert!(
        share(one) > 1.3 * fair && share(among) > 1.15 * fair,
        "first come first served: one branch {:.4}, alternatives {:.4}, fair {fair:.4}",
        share(one),
        share(among)
    );
    assert!(
        share(round) < 1.1 * fair,
        "round {:.4}, fair {fair:.4}",
        share(round)
    );
    eprintln!(
        "fast clients' share: one branch {:.4}, alternatives {:.4}, round {:.4}, fair {fair:.4}",
        share(one),
        share(among),
        share(round)
    );
    // Scarce, so units given back are taken again. With standby they go to the requests that
    // waited for them, in the order they joined, whatever the fast clients' retries: their share
    // of the takers stays within 1.2 times their share of applicants.
    let back = |m: &booking::ModeReport| m.fast_given_back as f64 / m.given_back_taken as f64;
    for m in [one, among, standby] {
        assert!(m.given_back_taken > 0, "{m:?}");
    }
    assert!(
        back(standby) <= 1.2 * applicants,
        "standby: fast clients took {:.4} of given-back units, applicants {applicants:.4}",
        back(standby)
    );
    // Standby places at least as many as alternatives alone: it only adds the units given back
    // that nobody asked for again.
    assert!(
        standby.bookings >= among.bookings && standby.no_slot <= among.no_slot,
        "standby {standby:?} against alternatives {among:?}"
    );
    eprintln!(
        "fast clients' share of given-back units: one branch {:.4}, alternatives {:.4}, \
         round {:.4}, standby {:.4}, applicants {applicants:.4}",
        back(one),
        back(among),
        back(round),
        back(standby)
    );
}

/// The modes run side by side without touching each other: a run of one mode alone gives that
/// mode the figures it has beside the others, and the others none.
#[test]
fn a_mode_run_alone_has_the_figures_it_has_beside_the_others() {
    let all = sim::run(&small(2, 5), |_, _| {});
    let one = booking::Mode::parse("alternatives").unwrap();
    let alone = sim::run(
        &sim::Config {
            modes: vec![one],
            ..small(2, 5)
        },
        |_, _| {},
    );
    let m = one as usize;
    assert!(alone.modes[m].ran);
    assert_eq!(
        serde_json::to_value(&alone.modes[m]).unwrap(),
        serde_json::to_value(&all.modes[m]).unwrap()
    );
    for other in [0, 2] {
        assert!(!alone.modes[other].ran);
        assert_eq!(alone.modes[other].bookings, 0);
    }
    assert_eq!(alone.room.admitted, all.room.admitted);
    assert!(alone.library_calls < all.library_calls);
}

/// Claims on (the default, 30 s) against the same arrivals through a room without them: passes
/// of visitors who gave up return their places after 30 s instead of `pass_ttl`, so the line
/// drains no slower and never admits below the rate for want of free places.
#[test]
fn claims_keep_the_drain_at_the_backend_rate() {
    let r = sim::run(&small(2, 3), |_, _| {});
    let without = r.without_claims.as_ref().expect("claims on by default");
    assert_eq!(r.claim_timeout_secs, 30.0);
    assert_eq!(
        r.room.admitted + r.room.gave_up + r.room.rejected,
        r.visitors
    );
    assert_eq!(
        without.admitted + without.gave_up + without.rejected,
        r.visitors
    );
    assert!(
        r.room.line_empty_secs <= without.line_empty_secs,
        "with claims the line empties at {} s, without at {} s",
        r.room.line_empty_secs,
        without.line_empty_secs
    );
    assert!(
        r.room.slowest_drain_admissions_per_sec > without.slowest_drain_admissions_per_sec,
        "slowest second of the drain: {} with claims, {} without",
        r.room.slowest_drain_admissions_per_sec,
        without.slowest_drain_admissions_per_sec
    );
    assert!(r.room.wait_p99_s <= without.wait_p99_s);
    // Off: no comparison room.
    let off = sim::run(
        &sim::Config {
            claim_timeout_secs: 0.0,
            ..small(1, 3)
        },
        |_, _| {},
    );
    assert!(off.without_claims.is_none());
    // The comparison room is exactly a run without claims.
    assert_eq!(
        serde_json::to_value(&off.room).unwrap(),
        serde_json::to_value(without).unwrap()
    );
}
