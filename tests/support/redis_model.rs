//! Random sequences of book operations applied to a `RedisSlotBook` and to the in-process
//! `SlotBook` side by side (holds long enough not to lapse within a case): every answer must be
//! the same, and every slot's counts equal after every step. Included by `tests/redis.rs`.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use surgegate::redis::RedisSlotBook;
use surgegate::{ApplicantId, BranchId, HoldToken, SlotBook};

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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3u32, 0..4u32, 0..3u32).prop_map(|(branch, slot, capacity)| Op::Capacity { branch, slot, capacity }),
        4 => (0..3u32, 0..4u32, 0..6u64).prop_map(|(branch, slot, applicant)| Op::Reserve { branch, slot, applicant }),
        3 => (0..3u32, 0..6u64).prop_map(|(branch, applicant)| Op::Earliest { branch, applicant }),
        3 => any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Release { pick }),
    ]
}

/// Runs `cases` random sequences against the store at `urls`.
pub fn compare(rt: &tokio::runtime::Runtime, urls: &[String], prefix: &str, cases: u32) {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    sequences(
        prop::collection::vec(op(), 1..40),
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
    for (step, op) in ops.iter().enumerate() {
        let here = format!("step {step}: {op:?}");
        match *op {
            Op::Capacity {
                branch,
                slot,
                capacity,
            } => {
                let (b, s) = (BranchId(branch), slot);
                let r = shared.set_capacity(b, s, capacity).await;
                let l = local.set_capacity(b, s, capacity);
                if r.as_ref().ok() != l.as_ref().ok() {
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
                    .reserve_earliest(BranchId(branch), 0..4, ApplicantId(applicant))
                    .await;
                let l = local.reserve_earliest(BranchId(branch), 0..4, ApplicantId(applicant));
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
        for branch in 0..3 {
            for slot in 0..4 {
                let r = shared
                    .slot(BranchId(branch), slot)
                    .await
                    .map_err(|e| e.to_string())?;
                let l = local.slot(BranchId(branch), slot);
                if r != l {
                    return Err(format!(
                        "{here}: slot {branch}/{slot}: redis {r:?}, local {l:?}"
                    ));
                }
            }
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
