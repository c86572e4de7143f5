//! The booking API's standby routes: `POST /v1/standby` puts an applicant in the book's
//! standby line for any of its branches in a slot range, `GET /v1/applicants/{applicant}/standby`
//! shows the hold the line gave it (or that it still waits, and for what), `DELETE` of the same
//! path takes its waiting request out. Each acts on the applicant it names only, behind the
//! same service token as every other route; a store without a standby line answers `501`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use surgegate::book::MAX_ALTERNATIVES;
use surgegate::{
    ApplicantId, BackendError, BookBackend, BranchId, StandbyError, StandbyRequest, StandbyTicket,
};

use super::handlers::{applicant, backend, body, hold_json, unavailable};
use super::{Answer, Api, bad_request, error};
use crate::metrics::BookOp;
use crate::stores::GateBook;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Join {
    applicant: u64,
    branches: Vec<u32>,
    from: u32,
    to: u32,
}

fn unsupported() -> Answer {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "unsupported",
        "this gate's book keeps no standby line",
    )
}

fn not_on_standby() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "not_on_standby",
        "no waiting request and no live hold from standby for this applicant",
    )
}

fn ticket_json(t: &StandbyTicket) -> Value {
    json!({"applicant": t.applicant.0, "number": t.number, "waiting": t.waiting})
}

fn request_json(r: &StandbyRequest) -> Value {
    let branches: Vec<u32> = r.branches.iter().map(|b| b.0).collect();
    json!({"status": "waiting", "applicant": r.applicant.0, "number": r.number,
           "branches": branches, "from": r.first, "to": u64::from(r.last) + 1})
}

fn standby_error(e: StandbyError) -> Answer {
    match e {
        StandbyError::UnitFree { branch, slot } => {
            let detail = format!("{branch} has a free unit in slot {slot}: hold it instead");
            (
                StatusCode::CONFLICT,
                Some(
                    json!({"error": "unit_free", "detail": detail, "branch": branch.0, "slot": slot}),
                ),
            )
        }
        StandbyError::ApplicantLimit => error(
            StatusCode::CONFLICT,
            "applicant_limit",
            "the applicant already holds or has booked as many as allowed",
        ),
        StandbyError::LineFull { max } => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "standby_full",
            format!("{max} requests already wait: retry later"),
        ),
        StandbyError::EmptyRange | StandbyError::Alternatives { .. } => bad_request(e.to_string()),
        StandbyError::Backend(BackendError::Unsupported) => unsupported(),
        other => unavailable(other),
    }
}

impl<B: GateBook> Api<B> {
    /// The branches and range of a join, checked: 1 to `MAX_ALTERNATIVES` branches (repeats
    /// dropped), each with an opened slot in `from..to`, and `from < to <= max_slots`.
    async fn checked_join(&self, j: &Join) -> Result<Vec<BranchId>, Answer> {
        if j.branches.is_empty() || j.branches.len() > MAX_ALTERNATIVES {
            return Err(bad_request(format!(
                "give 1 to {MAX_ALTERNATIVES} branches, not {}",
                j.branches.len()
            )));
        }
        if j.from >= j.to || j.to > self.max_slots {
            return Err(bad_request(format!(
                "from ({}) must be below to ({}), and to at most {}",
                j.from, j.to, self.max_slots
            )));
        }
        let mut branches: Vec<BranchId> = Vec::with_capacity(j.branches.len());
        for &b in &j.branches {
            if branches.contains(&BranchId(b)) {
                continue;
            }
            let opened = self.book.availability(BranchId(b), j.from..j.to).await;
            if opened.map_err(backend)?.is_empty() {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "unknown_slot",
                    format!("branch {b} has no opened slot in [{}, {})", j.from, j.to),
                ));
            }
            branches.push(BranchId(b));
        }
        Ok(branches)
    }

    pub(super) async fn standby_join(&self, bytes: &[u8]) -> Result<Answer, Answer> {
        let j: Join = body(bytes)?;
        let branches = self.checked_join(&j).await?;
        let r = self
            .book
            .standby(ApplicantId(j.applicant), &branches, j.from..j.to)
            .await;
        self.count(BookOp::Standby, &r);
        let ticket = r.map_err(standby_error)?;
        Ok((StatusCode::CREATED, Some(ticket_json(&ticket))))
    }

    pub(super) async fn standby_read(&self, a: &str) -> Result<Answer, Answer> {
        let a = applicant(a)?;
        // The offer first: reading it records a unit freed for the applicant as its hold.
        let offer = self.book.standby_offer(a).await;
        self.count(BookOp::Standby, &offer);
        match offer {
            Ok(Some(hold)) => {
                let mut v = hold_json(&hold);
                v["status"] = json!("offered");
                return Ok((StatusCode::OK, Some(v)));
            }
            Ok(None) => {}
            Err(BackendError::Unsupported) => return Err(unsupported()),
            Err(e) => return Err(backend(e)),
        }
        match self.book.standby_request(a).await {
            Ok(Some(request)) => Ok((StatusCode::OK, Some(request_json(&request)))),
            Ok(None) => Err(not_on_standby()),
            Err(BackendError::Unsupported) => Err(unsupported()),
            Err(e) => Err(backend(e)),
        }
    }

    pub(super) async fn standby_leave(&self, a: &str) -> Result<Answer, Answer> {
        let a = applicant(a)?;
        let r = self.book.leave_standby(a).await;
        self.count(BookOp::Standby, &r);
        match r {
            Ok(true) => Ok((StatusCode::NO_CONTENT, None)),
            Ok(false) => Err(not_on_standby()),
            Err(BackendError::Unsupported) => Err(unsupported()),
            Err(e) => Err(backend(e)),
        }
    }
}
