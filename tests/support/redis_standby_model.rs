//! Random sequences of book and standby operations applied to a `RedisSlotBook` and to the
//! in-process `SlotBook` side by side (holds long enough not to lapse within a case; requests
//! over one branch each, where the two lines must agree unit for unit): every answer must be
//! the same, and after every step the in-process invariants hold, each slot's counts are equal
//! on both, and so are the applicants' hold records per slot: the units Redis counts as held
//! beyond them (the offers not yet claimed) are exactly as many as in-process. After every step
//! each applicant asks for its offer on both (in-process a reservation claims an offer too, on
//! Redis only the standby calls do). Included by
//! `tests/redis_standby.rs`.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use surgegate::redis::RedisSlotBook;
use surgegate::{ApplicantId, BranchId, Hold, HoldToken, SlotBook, StandbyTicket};

use super::redis_model::sequences;

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
    Confirm {
        pick: usize,
    },
    Release {
        pick: usize,
    },
    Standby {
        branch: u32,
        first: u32,
        len: u32,
        applicant: u64,
    },
    Offer {
        applicant: u64,
    },
    Request {
        applicant: u64,
    },
    Leave {
        applicant: u64,
    },
    Close {
        branch: u32,
        slot: u32,
    },
}

const BRANCHES: u32 = 2;
const SLOTS: u32 = 3;
const APPLICANTS: u64 = 8;
const LIMIT: u32 = 2;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..BRANCHES, 0..SLOTS, 0..4u32).prop_map(|(branch, slot, capacity)| Op::Capacity { branch, slot, capacity }),
        4 => (0..BRANCHES, 0..SLOTS, 0..APPLICANTS).prop_map(|(branch, slot, applicant)| Op::Reserve { branch, slot, applicant }),
        2 => any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        3 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        4 => (0..BRANCHES, 0..SLOTS, 1..=SLOTS, 0..APPLICANTS).prop_map(|(branch, first, len, applicant)| Op::Standby { branch, first, len, applicant }),
        3 => (0..APPLICANTS).prop_map(|applicant| Op::Offer { applicant }),
        1 => (0..APPLICANTS).prop_map(|applicant| Op::Request { applicant }),
        1 => (0..APPLICANTS).prop_map(|applicant| Op::Leave { applicant }),
        1 => (0..BRANCHES, 0..SLOTS).prop_map(|(branch, slot)| Op::Close { branch, slot }),
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

/// What both sides said to one call, for comparing.
type Seen = Result<Option<(BranchId, u32, ApplicantId)>, String>;

fn place(h: &Hold) -> Option<(BranchId, u32, ApplicantId)> {
    Some((h.branch, h.slot, h.applicant))
}

/// The state the comparison carries from step to step.
#[derive(Default)]
struct Pairs {
    /// The tokens each side issued, in order: index i names the same hold on both.
    tokens: Vec<(HoldToken, HoldToken)>,
    /// Ticket numbers, Redis's to the in-process book's: the two orders must agree.
    numbers: HashMap<u64, u64>,
}

impl Pairs {
    fn hold(&mut self, r: &Hold, l: &Hold) {
        if !self.tokens.contains(&(r.token, l.token)) {
            self.tokens.push((r.token, l.token));
        }
    }

    /// Both gave a ticket: the same request on both if seen before, else a later one on both.
    fn ticket(&mut self, r: &StandbyTicket, l: &StandbyTicket) -> Result<(), String> {
        if let Some(&seen) = self.numbers.get(&r.number) {
            return if seen == l.number {
                Ok(())
            } else {
                Err(format!("redis {r:?} was local {seen}"))
            };
        }
        if self
            .numbers
            .iter()
            .any(|(&rn, &ln)| (rn < r.number) != (ln < l.number))
        {
            return Err(format!("redis {r:?}, local {l:?}: the orders differ"));
        }
        self.numbers.insert(r.number, l.number);
        Ok(())
    }
}

async fn step(
    shared: &RedisSlotBook,
    local: &SlotBook,
    op: &Op,
    pairs: &mut Pairs,
) -> Result<(), String> {
    let (r, l): (Seen, Seen) = match *op {
        Op::Capacity {
            branch,
            slot,
            capacity,
        } => {
            let (b, s) = (BranchId(branch), slot);
            let r = shared
                .set_capacity(b, s, capacity)
                .await
                .map_err(|e| e.to_string());
            let l = local
                .set_capacity(b, s, capacity)
                .map_err(|e| e.to_string());
            (r.map(|_| None), l.map(|_| None))
        }
        Op::Close { branch, slot } => {
            let r = shared
                .close_slot(BranchId(branch), slot)
                .await
                .map_err(|e| e.to_string());
            let l = local
                .close_slot(BranchId(branch), slot)
                .map_err(|e| e.to_string());
            (r.map(|_| None), l.map(|_| None))
        }
        Op::Reserve {
            branch,
            slot,
            applicant,
        } => {
            let a = ApplicantId(applicant);
            let r = shared.reserve(BranchId(branch), slot, a).await;
            let l = local.reserve(BranchId(branch), slot, a);
            if let (Ok(rh), Ok(lh)) = (&r, &l) {
                pairs.hold(rh, lh);
            }
            (
                r.map(|h| place(&h)).map_err(|e| e.to_string()),
                l.map(|h| place(&h)).map_err(|e| e.to_string()),
            )
        }
        Op::Confirm { pick } | Op::Release { pick } if !pairs.tokens.is_empty() => {
            let (rt, lt) = pairs.tokens[pick % pairs.tokens.len()];
            if matches!(op, Op::Confirm { .. }) {
                let r = shared
                    .confirm(rt)
                    .await
                    .map(|b| Some((b.branch, b.slot, b.applicant)));
                let l = local
                    .confirm(lt)
                    .map(|b| Some((b.branch, b.slot, b.applicant)));
                (r.map_err(|e| e.to_string()), l.map_err(|e| e.to_string()))
            } else {
                let r = shared.release(rt).await.map(|()| None);
                let l = local.release(lt).map(|()| None);
                (r.map_err(|e| e.to_string()), l.map_err(|e| e.to_string()))
            }
        }
        Op::Confirm { .. } | Op::Release { .. } => (Ok(None), Ok(None)),
        Op::Standby {
            branch,
            first,
            len,
            applicant,
        } => {
            let (a, b) = (ApplicantId(applicant), [BranchId(branch)]);
            let r = shared.standby(a, &b, first..first + len).await;
            let l = local.standby(a, &b, first..first + len);
            if let (Ok(rt), Ok(lt)) = (&r, &l) {
                pairs.ticket(rt, lt)?;
            }
            (
                r.map(|_| None).map_err(|e| e.to_string()),
                l.map(|_| None).map_err(|e| e.to_string()),
            )
        }
        Op::Offer { applicant } => {
            let a = ApplicantId(applicant);
            let r = shared.standby_offer(a).await.map_err(|e| e.to_string())?;
            let l = local.standby_offer(a);
            if let (Some(rh), Some(lh)) = (&r, &l) {
                pairs.hold(rh, lh);
            }
            (
                Ok(r.as_ref().and_then(place)),
                Ok(l.as_ref().and_then(place)),
            )
        }
        Op::Request { applicant } => {
            let a = ApplicantId(applicant);
            let r = shared.standby_request(a).await.map_err(|e| e.to_string())?;
            let l = local.standby_request(a);
            let shape = |q: Option<surgegate::StandbyRequest>| {
                q.map(|q| (q.branches[0], q.first, q.applicant))
            };
            (Ok(shape(r)), Ok(shape(l)))
        }
        Op::Leave { applicant } => {
            let a = ApplicantId(applicant);
            let r = shared.leave_standby(a).await.map_err(|e| e.to_string())?;
            let l = local.leave_standby(a);
            (
                Ok(r.then_some((BranchId(0), 0, a))),
                Ok(l.then_some((BranchId(0), 0, a))),
            )
        }
    };
    if r != l {
        return Err(format!("redis {r:?}, local {l:?}"));
    }
    Ok(())
}

/// Holds per (branch, slot) from every applicant's records on Redis, and the same in-process.
async fn holds(
    shared: &RedisSlotBook,
    local: &SlotBook,
) -> Result<(HashMap<(u32, u32), u32>, HashMap<(u32, u32), u32>), String> {
    let (mut r, mut l) = (HashMap::new(), HashMap::new());
    for a in (0..APPLICANTS).map(ApplicantId) {
        for h in shared.holds_of(a).await.map_err(|e| e.to_string())? {
            *r.entry((h.branch.0, h.slot)).or_default() += 1;
        }
        for h in local.holds_of(a) {
            *l.entry((h.branch.0, h.slot)).or_default() += 1;
        }
    }
    Ok((r, l))
}

async fn check(shared: &RedisSlotBook, local: &SlotBook) -> Result<(), String> {
    local
        .check_invariants()
        .map_err(|e| format!("in-process: {e}"))?;
    let (r_holds, l_holds) = holds(shared, local).await?;
    for branch in 0..BRANCHES {
        for slot in 0..SLOTS {
            let b = BranchId(branch);
            let r = shared.slot(b, slot).await.map_err(|e| e.to_string())?;
            let l = local.slot(b, slot);
            if r != l {
                return Err(format!("slot {branch}/{slot}: redis {r:?}, local {l:?}"));
            }
            let Some(s) = r else { continue };
            // Equal states and equal hold records: the units kept for requests are equal too.
            let rh = r_holds.get(&(branch, slot)).copied().unwrap_or(0);
            let lh = l_holds.get(&(branch, slot)).copied().unwrap_or(0);
            if rh > s.held || rh != lh {
                return Err(format!(
                    "slot {branch}/{slot} {s:?}: redis records hold {rh}, local {lh}"
                ));
            }
        }
    }
    Ok(())
}

async fn run_case(urls: &[&str], namespace: &str, ops: &[Op]) -> Result<(), String> {
    let ttl = Duration::from_secs(3600);
    let shared = RedisSlotBook::builder()
        .hold_ttl(ttl)
        .max_active_per_applicant(LIMIT)
        .namespace(namespace)
        .connect(urls)
        .await
        .map_err(|e| e.to_string())?;
    let local = SlotBook::builder()
        .hold_ttl(ttl)
        .max_active_per_applicant(LIMIT)
        .build();
    let mut pairs = Pairs::default();
    for branch in 0..BRANCHES {
        for slot in 0..SLOTS {
            shared
                .set_capacity(BranchId(branch), slot, 1)
                .await
                .map_err(|e| e.to_string())?;
            local
                .set_capacity(BranchId(branch), slot, 1)
                .map_err(|e| e.to_string())?;
        }
    }
    for (n, op) in ops.iter().enumerate() {
        let here = format!("step {n}: {op:?}");
        step(&shared, &local, op, &mut pairs)
            .await
            .map_err(|e| format!("{here}: {e}"))?;
        check(&shared, &local)
            .await
            .map_err(|e| format!("{here}: {e}"))?;
        // Every applicant looks for its offer, as a portal's waiting page does: in-process any
        // call of the applicant claims it, on Redis its standby calls do.
        for applicant in 0..APPLICANTS {
            let look = Op::Offer { applicant };
            step(&shared, &local, &look, &mut pairs)
                .await
                .map_err(|e| format!("{here}, then {look:?}: {e}"))?;
        }
    }
    Ok(())
}
