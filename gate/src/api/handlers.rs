//! The booking API's handlers (the standby line's are in `standby.rs`): each parses its numbers and body strictly, calls the book once
//! (or twice, to check what a token is before releasing it), and maps every outcome to the
//! status and body pinned for it.

use std::ops::Range;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use surgegate::{
    ApplicantId, BackendError, BookBackend, Booking, BranchId, CapacityError, ConfirmError, Hold,
    HoldToken, ReleaseError, ReserveError, SlotIndex, SlotState,
};

use super::idempotency::{Keys, Seen};
use super::{Answer, Api, bad_request, error};
use crate::metrics::BookOp;
use crate::stores::{self, GateBook};

/// One parsed request.
pub(super) struct Call<'a> {
    pub method: &'a Method,
    pub segments: &'a [&'a str],
    pub query: &'a str,
    pub body: &'a [u8],
    /// `Idempotency-Key`, if sent (`Err`: not text).
    pub key: Option<Result<String, http::header::ToStrError>>,
}

pub(super) fn number<T: std::str::FromStr>(what: &str, text: &str, max: &str) -> Result<T, Answer> {
    let digits = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten().ok_or_else(|| {
        bad_request(format!(
            "{what} {text:?} is not a whole number from 0 to {max}"
        ))
    })
}

pub(super) fn branch(text: &str) -> Result<BranchId, Answer> {
    number("branch", text, "4294967295").map(BranchId)
}

pub(super) fn slot(text: &str) -> Result<SlotIndex, Answer> {
    number("slot", text, "4294967295")
}

pub(super) fn applicant(text: &str) -> Result<ApplicantId, Answer> {
    number("applicant", text, "18446744073709551615").map(ApplicantId)
}

fn token(text: &str) -> Result<HoldToken, Answer> {
    text.parse()
        .map_err(|_| bad_request(format!("token {text:?} is not 32 lowercase hex digits")))
}

pub(super) fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(bytes)
        .map_err(|e| bad_request(format!("the body is not the JSON expected: {e}")))
}

fn state_json(s: SlotState) -> Value {
    json!({"capacity": s.capacity, "held": s.held, "booked": s.booked})
}

pub(super) fn hold_json(h: &Hold) -> Value {
    json!({"token": h.token.to_string(), "branch": h.branch.0, "slot": h.slot,
           "applicant": h.applicant.0, "expires_at": h.expires_at.as_secs()})
}

fn booking_json(b: &Booking) -> Value {
    json!({"token": b.token.to_string(), "branch": b.branch.0, "slot": b.slot, "applicant": b.applicant.0})
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> Answer {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("{e}"),
    )
}

pub(super) fn backend(e: BackendError) -> Answer {
    unavailable(e)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Capacity {
    capacity: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneSlot {
    branch: u32,
    slot: u32,
    applicant: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Among {
    branches: Vec<u32>,
    from: u32,
    to: u32,
    applicant: u64,
}

/// `?from=S&to=S`, each at most once, nothing else.
fn range(query: &str, max_slots: u32) -> Result<Range<SlotIndex>, Answer> {
    let (mut from, mut to) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let place = match k {
            "from" => &mut from,
            "to" => &mut to,
            _ => {
                return Err(bad_request(format!(
                    "unknown query parameter {k:?}: use from and to"
                )));
            }
        };
        if place.replace(slot(v)?).is_some() {
            return Err(bad_request(format!("{k} is given twice")));
        }
    }
    let (from, to) = (from.unwrap_or(0), to.unwrap_or(max_slots));
    if from > to {
        return Err(bad_request(format!("from ({from}) is after to ({to})")));
    }
    Ok(from..to)
}

impl<B: GateBook> Api<B> {
    pub(super) async fn route(&self, c: Call<'_>) -> Answer {
        let result = match (c.method.as_str(), c.segments) {
            ("PUT", ["v1", "branches", b, "slots", s]) => self.set_capacity(b, s, c.body).await,
            ("GET", ["v1", "branches", b, "slots", s]) => self.slot(b, s).await,
            ("GET", ["v1", "branches", b, "availability"]) => self.availability(b, c.query).await,
            ("POST", ["v1", "holds"]) => self.reserve(c.body, c.key).await,
            ("GET", ["v1", "holds", t]) => self.hold(t).await,
            ("DELETE", ["v1", "holds", t]) => self.release(t, true).await,
            ("POST", ["v1", "holds", t, "confirm"]) => self.confirm(t).await,
            ("GET", ["v1", "bookings", t]) => self.booking(t).await,
            ("DELETE", ["v1", "bookings", t]) => self.release(t, false).await,
            ("GET", ["v1", "applicants", a, "bookings"]) => self.bookings_of(a).await,
            ("POST", ["v1", "standby"]) => self.standby_join(c.body).await,
            ("GET", ["v1", "applicants", a, "standby"]) => self.standby_read(a).await,
            ("DELETE", ["v1", "applicants", a, "standby"]) => self.standby_leave(a).await,
            _ => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route: see GET /v1/openapi.json",
            )),
        };
        result.unwrap_or_else(|answer| answer)
    }

    pub(super) fn count<T, E>(&self, op: BookOp, r: &Result<T, E>) {
        self.metrics.book(op, r.is_ok());
    }

    async fn set_capacity(&self, b: &str, s: &str, bytes: &[u8]) -> Result<Answer, Answer> {
        let (b, s) = (branch(b)?, slot(s)?);
        let Capacity { capacity } = body(bytes)?;
        let r = stores::write(&*self.book, self.book.set_capacity(b, s, capacity)).await;
        self.count(BookOp::SetCapacity, &r);
        match r {
            Ok(state) => Ok((StatusCode::OK, Some(state_json(state)))),
            Err(CapacityError::Journal(e)) => Err(unavailable(e)),
            Err(CapacityError::Backend(e)) => Err(backend(e)),
            Err(e) => Err(bad_request(e.to_string())),
        }
    }

    async fn slot(&self, b: &str, s: &str) -> Result<Answer, Answer> {
        let (b, s) = (branch(b)?, slot(s)?);
        let r = self.book.slot(b, s).await;
        self.count(BookOp::Lookup, &r);
        match r.map_err(backend)? {
            Some(state) => Ok((StatusCode::OK, Some(state_json(state)))),
            None => Err(error(
                StatusCode::NOT_FOUND,
                "unknown_slot",
                "this slot was never opened",
            )),
        }
    }

    async fn availability(&self, b: &str, query: &str) -> Result<Answer, Answer> {
        let b = branch(b)?;
        let slots = range(query, self.max_slots)?;
        let r = self.book.availability(b, slots).await;
        self.count(BookOp::Availability, &r);
        let list: Vec<Value> = r
            .map_err(backend)?
            .into_iter()
            .map(|(s, st)| json!({"slot": s, "capacity": st.capacity, "held": st.held, "booked": st.booked}))
            .collect();
        Ok((StatusCode::OK, Some(Value::Array(list))))
    }

    async fn reserve(
        &self,
        bytes: &[u8],
        key: Option<Result<String, http::header::ToStrError>>,
    ) -> Result<Answer, Answer> {
        let key = match key {
            None => None,
            Some(Ok(k)) if Keys::valid(&k) => Some(k),
            Some(_) => {
                return Err(bad_request(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                ));
            }
        };
        let value: Value = body(bytes)?;
        let among = value.get("branches").is_some();
        let fingerprint = if among {
            let a: Among = body(bytes)?;
            format!("among:{:?}:{}:{}:{}", a.branches, a.from, a.to, a.applicant)
        } else {
            let o: OneSlot = body(bytes)?;
            format!("one:{}:{}:{}", o.branch, o.slot, o.applicant)
        };
        if let Some(k) = &key {
            match self.keys.check(k, &fingerprint) {
                Seen::Same(hold) => return Ok((StatusCode::CREATED, Some(hold_json(&hold)))),
                Seen::Conflict => {
                    return Err(error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for another request: use a new key for a new request",
                    ));
                }
                Seen::New => {}
            }
        }
        let r = if among {
            let a: Among = body(bytes)?;
            if a.from > a.to {
                return Err(bad_request(format!(
                    "from ({}) is after to ({})",
                    a.from, a.to
                )));
            }
            let branches: Vec<BranchId> = a.branches.iter().copied().map(BranchId).collect();
            self.book
                .reserve_earliest_among(&branches, a.from..a.to, ApplicantId(a.applicant))
                .await
        } else {
            let o: OneSlot = body(bytes)?;
            self.book
                .reserve(BranchId(o.branch), o.slot, ApplicantId(o.applicant))
                .await
        };
        self.count(BookOp::Reserve, &r);
        let hold = r.map_err(reserve_error)?;
        if let Some(k) = &key {
            self.keys.remember(k, &fingerprint, hold);
        }
        Ok((StatusCode::CREATED, Some(hold_json(&hold))))
    }

    async fn hold(&self, t: &str) -> Result<Answer, Answer> {
        let t = token(t)?;
        let r = self.book.hold(t).await;
        self.count(BookOp::Lookup, &r);
        match r.map_err(backend)? {
            Some(h) => Ok((StatusCode::OK, Some(hold_json(&h)))),
            None => Err(error(
                StatusCode::NOT_FOUND,
                "unknown_token",
                "no live hold has this token",
            )),
        }
    }

    async fn confirm(&self, t: &str) -> Result<Answer, Answer> {
        let t = token(t)?;
        let r = stores::write(&*self.book, self.book.confirm(t)).await;
        self.count(BookOp::Confirm, &r);
        match r {
            Ok(b) => Ok((StatusCode::OK, Some(booking_json(&b)))),
            Err(ConfirmError::UnknownToken) => Err(error(
                StatusCode::NOT_FOUND,
                "unknown_token",
                "no hold or booking has this token",
            )),
            Err(ConfirmError::Expired) => Err(error(
                StatusCode::GONE,
                "expired",
                "the hold lapsed before its confirmation: take a new one",
            )),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn booking(&self, t: &str) -> Result<Answer, Answer> {
        let t = token(t)?;
        let r = self.book.booking(t).await;
        self.count(BookOp::Lookup, &r);
        match r.map_err(backend)? {
            Some(b) => Ok((StatusCode::OK, Some(booking_json(&b)))),
            None => Err(error(
                StatusCode::NOT_FOUND,
                "unknown_token",
                "no booking has this token",
            )),
        }
    }

    /// `DELETE /v1/holds/{token}` releases a live hold only, `DELETE /v1/bookings/{token}` a
    /// booking only: a client that means one never cancels the other.
    async fn release(&self, t: &str, hold: bool) -> Result<Answer, Answer> {
        let t = token(t)?;
        let exists = if hold {
            self.book.hold(t).await.map(|h| h.is_some())
        } else {
            self.book.booking(t).await.map(|b| b.is_some())
        };
        if !exists.map_err(backend)? {
            let what = if hold {
                "no live hold has this token"
            } else {
                "no booking has this token"
            };
            return Err(error(StatusCode::NOT_FOUND, "unknown_token", what));
        }
        let r = stores::write(&*self.book, self.book.release(t)).await;
        self.count(BookOp::Release, &r);
        match r {
            Ok(()) => Ok((StatusCode::NO_CONTENT, None)),
            Err(ReleaseError::UnknownToken) => Err(error(
                StatusCode::NOT_FOUND,
                "unknown_token",
                "already released or lapsed",
            )),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn bookings_of(&self, a: &str) -> Result<Answer, Answer> {
        let a = applicant(a)?;
        let r = self.book.bookings_of(a).await;
        self.count(BookOp::Lookup, &r);
        let list: Vec<Value> = r.map_err(backend)?.iter().map(booking_json).collect();
        Ok((StatusCode::OK, Some(Value::Array(list))))
    }
}

fn reserve_error(e: ReserveError) -> Answer {
    match e {
        ReserveError::UnknownSlot => {
            error(StatusCode::NOT_FOUND, "unknown_slot", "no such opened slot")
        }
        ReserveError::Full | ReserveError::NoneAvailable => error(
            StatusCode::CONFLICT,
            "full",
            "no room left: try another slot or range",
        ),
        ReserveError::ApplicantLimit => error(
            StatusCode::CONFLICT,
            "applicant_limit",
            "the applicant already holds or has booked as many as allowed",
        ),
        ReserveError::EmptyRange | ReserveError::Alternatives { .. } => bad_request(e.to_string()),
        other => unavailable(other),
    }
}
