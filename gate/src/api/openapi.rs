//! `GET /v1/openapi.json`: the booking API described in OpenAPI 3.1, built from the same
//! route table the API dispatches on (a test checks both against each other).

use serde_json::{Map, Value, json};

/// One operation: method, path, summary, whether it takes a JSON body, answers.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    ok: (u16, Option<&'static str>),
    errors: &'static [u16],
}

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/v1/openapi.json",
        summary: "This document",
        body: None,
        ok: (200, None),
        errors: &[],
    },
    Op {
        method: "put",
        path: "/v1/branches/{branch}/slots/{slot}",
        summary: "Open a slot or change its capacity",
        body: Some("Capacity"),
        ok: (200, Some("SlotState")),
        errors: &[400, 401, 503],
    },
    Op {
        method: "get",
        path: "/v1/branches/{branch}/slots/{slot}",
        summary: "One slot's counts",
        body: None,
        ok: (200, Some("SlotState")),
        errors: &[400, 401, 404, 503],
    },
    Op {
        method: "get",
        path: "/v1/branches/{branch}/availability",
        summary: "The opened slots of a branch in [from, to)",
        body: None,
        ok: (200, Some("Availability")),
        errors: &[400, 401, 503],
    },
    Op {
        method: "post",
        path: "/v1/holds",
        summary: "Hold one unit: a slot, or the earliest slot with room among branches (Idempotency-Key returns the same hold)",
        body: Some("HoldRequest"),
        ok: (201, Some("Hold")),
        errors: &[400, 401, 404, 409, 422, 503],
    },
    Op {
        method: "get",
        path: "/v1/holds/{token}",
        summary: "A live hold",
        body: None,
        ok: (200, Some("Hold")),
        errors: &[400, 401, 404, 503],
    },
    Op {
        method: "delete",
        path: "/v1/holds/{token}",
        summary: "Give a hold back",
        body: None,
        ok: (204, None),
        errors: &[400, 401, 404, 503],
    },
    Op {
        method: "post",
        path: "/v1/holds/{token}/confirm",
        summary: "Confirm a hold into a booking (again: the same booking)",
        body: None,
        ok: (200, Some("Booking")),
        errors: &[400, 401, 404, 410, 503],
    },
    Op {
        method: "get",
        path: "/v1/bookings/{token}",
        summary: "A booking",
        body: None,
        ok: (200, Some("Booking")),
        errors: &[400, 401, 404, 503],
    },
    Op {
        method: "delete",
        path: "/v1/bookings/{token}",
        summary: "Cancel a booking",
        body: None,
        ok: (204, None),
        errors: &[400, 401, 404, 503],
    },
    Op {
        method: "get",
        path: "/v1/applicants/{applicant}/bookings",
        summary: "An applicant's bookings",
        body: None,
        ok: (200, Some("Bookings")),
        errors: &[400, 401, 503],
    },
    Op {
        method: "post",
        path: "/v1/standby",
        summary: "Join the standby line for one unit among branches in [from, to) when none is free: the next unit freed there is held for the earliest request (again while waiting: the same ticket)",
        body: Some("StandbyRequest"),
        ok: (201, Some("StandbyTicket")),
        errors: &[400, 401, 404, 409, 501, 503],
    },
    Op {
        method: "get",
        path: "/v1/applicants/{applicant}/standby",
        summary: "The hold standby gave the applicant (status offered), or its waiting request (status waiting)",
        body: None,
        ok: (200, Some("Standby")),
        errors: &[400, 401, 404, 501, 503],
    },
    Op {
        method: "delete",
        path: "/v1/applicants/{applicant}/standby",
        summary: "Leave the standby line (a hold it gave stays the applicant's)",
        body: None,
        ok: (204, None),
        errors: &[400, 401, 404, 501, 503],
    },
];

fn parameter(name: &str) -> Value {
    let (schema, about) = match name {
        "token" => (
            json!({"type": "string", "pattern": "^[0-9a-f]{32}$"}),
            "A hold's or booking's token",
        ),
        "applicant" => (
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
            "The applicant's id",
        ),
        "branch" => (
            json!({"type": "integer", "minimum": 0, "maximum": u32::MAX}),
            "The branch's id",
        ),
        _ => (
            json!({"type": "integer", "minimum": 0, "maximum": u32::MAX}),
            "A slot index",
        ),
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema, "description": about})
}

fn operation(op: &Op) -> Value {
    let mut params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(parameter)
        .collect();
    if op.path.ends_with("/availability") {
        for q in ["from", "to"] {
            params.push(json!({"name": q, "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}}));
        }
    }
    if op.path == "/v1/holds" {
        params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255}}));
    }
    let mut responses = Map::new();
    let ok = match op.ok.1 {
        Some(schema) => {
            json!({"description": "Done", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
        }
        None => json!({"description": "Done"}),
    };
    responses.insert(op.ok.0.to_string(), ok);
    for code in op.errors {
        responses.insert(code.to_string(), json!({"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
    }
    let mut o = json!({"summary": op.summary, "parameters": params, "responses": responses});
    if let Some(body) = op.body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
    }
    if op.path != "/v1/openapi.json" {
        o["security"] = json!([{"service": []}]);
    }
    o
}

fn schemas() -> Value {
    let uint = json!({"type": "integer", "minimum": 0});
    let token = json!({"type": "string", "pattern": "^[0-9a-f]{32}$"});
    json!({
        "Capacity": {"type": "object", "required": ["capacity"], "properties": {"capacity": uint}, "additionalProperties": false},
        "SlotState": {"type": "object", "properties": {"capacity": uint, "held": uint, "booked": uint}},
        "Availability": {"type": "array", "items": {"type": "object", "properties": {"slot": uint, "capacity": uint, "held": uint, "booked": uint}}},
        "HoldRequest": {"oneOf": [
            {"type": "object", "required": ["branch", "slot", "applicant"], "additionalProperties": false,
             "properties": {"branch": uint, "slot": uint, "applicant": uint}},
            {"type": "object", "required": ["branches", "from", "to", "applicant"], "additionalProperties": false,
             "properties": {"branches": {"type": "array", "items": uint, "minItems": 1, "maxItems": 16}, "from": uint, "to": uint, "applicant": uint}}
        ]},
        "Hold": {"type": "object", "properties": {"token": token, "branch": uint, "slot": uint, "applicant": uint,
                 "expires_at": {"type": "integer", "description": "Unix seconds"}}},
        "Booking": {"type": "object", "properties": {"token": token, "branch": uint, "slot": uint, "applicant": uint}},
        "Bookings": {"type": "array", "items": {"$ref": "#/components/schemas/Booking"}},
        "StandbyRequest": {"type": "object", "required": ["applicant", "branches", "from", "to"], "additionalProperties": false,
             "properties": {"applicant": uint, "branches": {"type": "array", "items": uint, "minItems": 1, "maxItems": 16}, "from": uint, "to": uint}},
        "StandbyTicket": {"type": "object", "properties": {"applicant": uint, "number": uint, "waiting": uint}},
        "Standby": {"oneOf": [
            {"type": "object", "properties": {"status": {"const": "offered"}, "token": token, "branch": uint, "slot": uint,
             "applicant": uint, "expires_at": {"type": "integer", "description": "Unix seconds"}}},
            {"type": "object", "properties": {"status": {"const": "waiting"}, "applicant": uint, "number": uint,
             "branches": {"type": "array", "items": uint}, "from": uint, "to": uint}}
        ]},
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string", "enum": ["bad_request", "unauthorized", "not_found", "method_not_allowed", "too_large",
                       "full", "applicant_limit", "unknown_slot", "unknown_token", "expired", "idempotency_key_reused", "unavailable",
                       "unit_free", "standby_full", "not_on_standby", "unsupported"]},
            "detail": {"type": "string"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let entry = paths.entry(op.path).or_insert_with(|| json!({}));
        entry[op.method] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "surgegate-gate booking API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"service": {"type": "http", "scheme": "bearer"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::document;
    use crate::api::ROUTES;

    #[test]
    fn the_document_lists_exactly_the_routes_that_exist() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut listed: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(|m| (m.to_uppercase(), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).into(), (*p).into()))
            .collect();
        listed.sort();
        routes.sort();
        assert_eq!(listed, routes);
    }
}
