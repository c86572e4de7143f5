//! Random sequences of book operations, channel quotas among them, applied to a `RedisSlotBook`
//! and to the in-process `SlotBook` side by side (holds long enough not to lapse within a
//! case): every answer must be the same, every slot's counts and quotas equal after every step,
//! and the invariants hold on Redis after every step: capacity = remaining + held + booked, the
//! applicants' records add up to each slot's held and booked counts, and each channel holds and
//! books at most its quota plus the open part. Included by `tests/redis.rs` and
//! `tests/redis_channels.rs`.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::{HashMap, HashSet};
use surgegate::redis::RedisSlotBook;

use surgegate::{ApplicantId, BranchId, Channel, HoldToken, SlotBook, SlotQuotas, SlotState};

#[derive(Clone, Debug)]
enum Op {
    Capacity {
        branch: u32,
        slot: u32,
        capacity: u32,
    },
    Reserve {
        branch: u32,
        slot: u32,
        applicant: u64,
    },
    Earliest {
        branch: u32,
        applicant: u64,
    },
    Confirm {
        pick: usize,
    },
    Release {
        pick: usize,
    },
    Quota {
        branch: u32,
        slot: u32,
        channel: u8,
        quota: u32,
    },
    ReserveOn {
        channel: u8,
        branch: u32,
        slot: u32,
        applicant: u64,
    },
    Open {
        branch: u32,
        slot: u32,
    },
    OpenRange {
        branch: u32,
    },
    Close {
        branch: u32,
        slot: u32,
    },
}

const BRANCHES: u32 = 2;
const SLOTS: u32 = 3;
const APPLICANTS: u64 = 10;

/// The plain operations, with channel operations weighted by `channels` (0: none).
fn op(channels: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        2 + channels => (0..BRANCHES, 0..SLOTS, 0..5u32).prop_map(|(branch, slot, capacity)| Op::Capacity { branch, slot, capacity }),
        4 => (0..BRANCHES, 0..SLOTS, 0..APPLICANTS).prop_map(|(branch, slot, applicant)| Op::Reserve { branch, slot, applicant }),
        3 => (0..BRANCHES, 0..APPLICANTS).prop_map(|(branch, applicant)| Op::Earliest { branch, applicant }),
        3 => any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        2 + channels => any::<usize>().prop_map(|pick| Op::Release { pick }),
        channels * 2 => (0..BRANCHES, 0..SLOTS, 0..3u8, 0..4u32).prop_map(|(branch, slot, channel, quota)| Op::Quota { branch, slot, channel, quota }),
        channels * 4 => (0..3u8, 0..BRANCHES, 0..SLOTS, 0..APPLICANTS).prop_map(|(channel, branch, slot, applicant)| Op::ReserveOn { channel, branch, slot, applicant }),
        channels => (0..BRANCHES, 0..SLOTS).prop_map(|(branch, slot)| Op::Open { branch, slot }),
        channels => (0..BRANCHES).prop_map(|branch| Op::OpenRange { branch }),
        channels.div_ceil(2) => (0..BRANCHES, 0..SLOTS).prop_map(|(branch, slot)| Op::Close { branch, slot }),
    ]
}

/// Runs `cases` random sequences against the store at `urls`, channel operations among them.
pub fn compare(rt: &tokio::runtime::Runtime, urls: &[String], prefix: &str, cases: u32) {
    compare_weighted(rt, urls, prefix, cases, 1);
}

/// [`compare`] with the channel operations weighted by `channels` against the plain ones
/// (and capacity changes and releases with them, so that quota slots fill and empty).
pub fn compare_weighted(
    rt: &tokio::runtime::Runtime,
    urls: &[String],
    prefix: &str,
    cases: u32,
    channels: u32,
) {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    sequences(
        prop::collection::vec(op(channels), 1..40),
        prefix,
        cases,
        |namespace, ops| rt.block_on(run_case(&urls, namespace, ops)),
    );
}

/// Runs `cases` sequences drawn from `strategy` through `case`, each under a namespace of its
/// own (so no case sees another's keys); fails with the shrunk sequence on the first error.
pub fn sequences<S: Strategy>(
    strategy: S,
    prefix: &str,
    cases: u32,
    case: impl Fn(&str, &S::Value) -> Result<(), String>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let count = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&strategy, |value| {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            case(&format!("{prefix}-{n}-{stamp}"), &value).map_err(TestCaseError::fail)
        })
        .unwrap();
}

async fn run_case(urls: &[&str], namespace: &str, ops: &[Op]) -> Result<(), String> {
    let ttl = Duration::from_secs(3600);
    let shared = RedisSlotBook::builder()
        .hold_ttl(ttl)
        .namespace(namespace)
        .connect(urls)
        .await
        .map_err(|e| e.to_string())?;
    let local = SlotBook::builder()
        .hold_ttl(ttl)
        .max_active_per_applicant(1)
        .build();
    // The tokens each side issued, in order: index i names the same hold on both.
    let mut tokens: Vec<(HoldToken, HoldToken)> = Vec::new();
    // Slots whose capacity or quotas were changed under what was taken: the per-channel bound
    // may not hold there (as rule 1 after a lowering).
    let mut cut: HashSet<(u32, u32)> = HashSet::new();
    // Every other slot opens with 3 units, so that quotas have somewhere to be.
    for branch in 0..BRANCHES {
        for slot in (0..SLOTS).filter(|s| (s + branch) % 2 == 0) {
            let r = shared.set_capacity(BranchId(branch), slot, 3).await;
            let l = local.set_capacity(BranchId(branch), slot, 3);
            if r != l {
                return Err(format!("opening {branch}/{slot}: redis {r:?}, local {l:?}"));
            }
        }
    }
    for (step, op) in ops.iter().enumerate() {
        let here = format!("step {step}: {op:?}");
        match *op {
            Op::Capacity {
                branch,
                slot,
                capacity,
            } => {
                let (b, s) = (BranchId(branch), slot);
                // A closed slot shows no counts: it may hold and book, so count it as cut.
                if local.slot(b, s).is_none_or(|st| st.held + st.booked > 0) {
                    cut.insert((branch, slot));
                }
                let r = shared.set_capacity(b, s, capacity).await;
                let l = local.set_capacity(b, s, capacity);
                if r != l {
                    return Err(format!("{here}: redis {r:?}, local {l:?}"));
                }
            }
            Op::Quota {
                branch,
                slot,
                channel,
                quota,
            } => {
                let (b, s) = (BranchId(branch), slot);
                if local.slot(b, s).is_some_and(|st| st.held + st.booked > 0) {
                    cut.insert((branch, slot));
                }
                let r = shared
                    .set_channel_quota(b, s, Channel(channel), quota)
                    .await;
                let l = local.set_channel_quota(b, s, Channel(channel), quota);
                if r != l {
                    return Err(format!("{here}: redis {r:?}, local {l:?}"));
                }
            }
            Op::ReserveOn {
                channel,
                branch,
                slot,
                applicant,
            } => {
                let (c, b, a) = (Channel(channel), BranchId(branch), ApplicantId(applicant));
                let r = shared.reserve_on(c, b, slot, a).await;
                let l = local.reserve_on(c, b, slot, a);
                same_hold(&here, r, l, &mut tokens)?;
            }
            Op::Open { branch, slot } => {
                let r = shared.open_channel_quotas(BranchId(branch), slot).await;
                let l = local.open_channel_quotas(BranchId(branch), slot);
                if r != l {
                    return Err(format!("{here}: redis {r:?}, local {l:?}"));
                }
            }
            Op::OpenRange { branch } => {
                let r = shared.open_channel_quotas_in(BranchId(branch), 1..).await;
                let l = local.open_channel_quotas_in(BranchId(branch), 1..);
                if r != l {
                    return Err(format!("{here}: redis {r:?}, local {l:?}"));
                }
            }
            Op::Close { branch, slot } => {
                let r = shared.close_slot(BranchId(branch), slot).await;
                let l = local.close_slot(BranchId(branch), slot);
                if r != l {
                    return Err(format!("{here}: redis {r:?}, local {l:?}"));
                }
            }
            Op::Reserve {
                branch,
                slot,
                applicant,
            } => {
                let r = shared
                    .reserve(BranchId(branch), slot, ApplicantId(applicant))
                    .await;
                let l = local.reserve(BranchId(branch), slot, ApplicantId(applicant));
                same_hold(&here, r, l, &mut tokens)?;
            }
            Op::Earliest { branch, applicant } => {
                let r = shared
                    .reserve_earliest(BranchId(branch), 0..SLOTS, ApplicantId(applicant))
                    .await;
                let l = local.reserve_earliest(BranchId(branch), 0..SLOTS, ApplicantId(applicant));
                same_hold(&here, r, l, &mut tokens)?;
            }
            Op::Confirm { pick } | Op::Release { pick } if !tokens.is_empty() => {
                let (rt, lt) = tokens[pick % tokens.len()];
                let same = if matches!(op, Op::Confirm { .. }) {
                    let (r, l) = (shared.confirm(rt).await, local.confirm(lt));
                    (
                        r.as_ref()
                            .map(|b| (b.branch, b.slot, b.applicant))
                            .map_err(|e| format!("{e:?}")),
                        l.as_ref()
                            .map(|b| (b.branch, b.slot, b.applicant))
                            .map_err(|e| format!("{e:?}")),
                    )
                } else {
                    let (r, l) = (shared.release(rt).await, local.release(lt));
                    (
                        r.map(|()| (BranchId(0), 0, ApplicantId(0)))
                            .map_err(|e| format!("{e:?}")),
                        l.map(|()| (BranchId(0), 0, ApplicantId(0)))
                            .map_err(|e| format!("{e:?}")),
                    )
                };
                if same.0 != same.1 {
                    return Err(format!("{here}: redis {:?}, local {:?}", same.0, same.1));
                }
            }
            Op::Confirm { .. } | Op::Release { .. } => {}
        }
        let per_slot = records(&shared).await.map_err(|e| format!("{here}: {e}"))?;
        for branch in 0..BRANCHES {
            for slot in 0..SLOTS {
                let at = format!("{here}: slot {branch}/{slot}");
                let b = BranchId(branch);
                let r = shared.slot(b, slot).await.map_err(|e| e.to_string())?;
                let l = local.slot(b, slot);
                if r != l {
                    return Err(format!("{at}: redis {r:?}, local {l:?}"));
                }
                let rq = shared.channel_quotas(b, slot).await;
                let lq = local.channel_quotas(b, slot);
                if rq.as_ref().ok() != Some(&lq) {
                    return Err(format!("{at}: quotas: redis {rq:?}, local {lq:?}"));
                }
                let counted = per_slot.get(&(branch, slot)).copied().unwrap_or((0, 0));
                let uncut = !cut.contains(&(branch, slot));
                invariants(r, lq.as_ref(), counted, uncut).map_err(|e| format!("{at}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// Live holds and bookings per (branch, slot), from every applicant's records on Redis.
async fn records(
    book: &RedisSlotBook,
) -> Result<HashMap<(u32, u32), (u32, u32)>, surgegate::BackendError> {
    let mut out: HashMap<(u32, u32), (u32, u32)> = HashMap::new();
    for a in 0..APPLICANTS {
        for h in book.holds_of(ApplicantId(a)).await? {
            out.entry((h.branch.0, h.slot)).or_default().0 += 1;
        }
        for k in book.bookings_of(ApplicantId(a)).await? {
            out.entry((k.branch.0, k.slot)).or_default().1 += 1;
        }
    }
    Ok(out)
}

/// The invariants of one slot (its state on Redis, its quotas, the records counted for it).
fn invariants(
    state: Option<SlotState>,
    quotas: Option<&SlotQuotas>,
    (held, booked): (u32, u32),
    uncut: bool,
) -> Result<(), String> {
    if let Some(s) = state {
        if (s.held, s.booked) != (held, booked) {
            return Err(format!(
                "{s:?}, but the records hold {held} and book {booked}"
            ));
        }
        if uncut && s.remaining() + s.held + s.booked != s.capacity {
            return Err(format!("{s:?}: capacity != remaining + held + booked"));
        }
    }
    let Some(q) = quotas else {
        return Ok(());
    };
    let kept: u32 = q.channels.iter().map(|c| c.quota).sum();
    let unused: u32 = q
        .channels
        .iter()
        .map(|c| c.quota.saturating_sub(c.from_quota))
        .sum();
    if kept > q.capacity {
        return Err(format!("{q:?}: quotas above the capacity"));
    }
    if let Some(s) = state
        && s.capacity != q.capacity - unused
    {
        return Err(format!(
            "{s:?} {q:?}: plain capacity != capacity - unused quota"
        ));
    }
    let taken: u32 = q.channels.iter().map(|c| c.taken).sum();
    if taken > held + booked {
        return Err(format!("{q:?}: channels took {taken} of {}", held + booked));
    }
    for c in &q.channels {
        if c.from_quota > c.taken {
            return Err(format!("{c:?}: more from its quota than it took"));
        }
        if uncut && c.taken > c.quota + (q.capacity - kept) {
            return Err(format!(
                "{c:?} of {q:?}: above its quota plus the open part"
            ));
        }
    }
    Ok(())
}

/// Both granted a hold of the same place to the same applicant, or refused for the same reason.
fn same_hold(
    here: &str,
    r: Result<surgegate::Hold, surgegate::ReserveError>,
    l: Result<surgegate::Hold, surgegate::ReserveError>,
    tokens: &mut Vec<(HoldToken, HoldToken)>,
) -> Result<(), String> {
    match (&r, &l) {
        (Ok(rh), Ok(lh))
            if (rh.branch, rh.slot, rh.applicant) == (lh.branch, lh.slot, lh.applicant) =>
        {
            if !tokens.contains(&(rh.token, lh.token)) {
                tokens.push((rh.token, lh.token));
            }
            Ok(())
        }
        (Err(re), Err(le)) if re == le => Ok(()),
        _ => Err(format!("{here}: redis {r:?}, local {l:?}")),
    }
}
