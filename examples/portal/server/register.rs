//! The gated registration form: validated whole; bad input gets a message per field and stores
//! nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::{Form, State as Shared};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use surgegate::{BookBackend, Pass, RoomBackend};

use super::html::{csrf_field, esc, page};
use super::registry::{NewRegistration, RegisterError};
use super::{Portal, State};

/// The form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub national_id: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub csrf: String,
}

/// What is wrong with each field (empty: nothing).
#[derive(Debug, Default)]
pub struct Problems {
    pub name: Option<&'static str>,
    pub national_id: Option<&'static str>,
    pub phone: Option<&'static str>,
}

impl Problems {
    fn any(&self) -> bool {
        self.name.is_some() || self.national_id.is_some() || self.phone.is_some()
    }
}

/// The one form a national id is kept (and compared) in, so that one person registers once
/// however they type it: spaces around it dropped, Arabic-Indic digits read as the digits they
/// are, and leading zeros dropped (`00123456` is `123456`). `None` unless the typed id is 6 to
/// 20 digits, not all zeros.
pub fn canonical_national_id(typed: &str) -> Option<String> {
    let digits: Option<String> = typed
        .trim()
        .chars()
        .map(|c| match c {
            '0'..='9' => Some(c),
            '\u{660}'..='\u{669}' => char::from_digit(c as u32 - 0x660, 10),
            '\u{6F0}'..='\u{6F9}' => char::from_digit(c as u32 - 0x6F0, 10),
            _ => None,
        })
        .collect();
    let digits = digits?;
    if !(6..=20).contains(&digits.len()) {
        return None;
    }
    let kept = digits.trim_start_matches('0');
    (!kept.is_empty()).then(|| kept.to_owned())
}

/// Checks every field; the cleaned values on success.
pub fn validate(f: &Fields) -> Result<(String, String, String), Problems> {
    let name = f.name.split_whitespace().collect::<Vec<_>>().join(" ");
    let name_chars = name.chars().count();
    let mut p = Problems::default();
    if !(2..=100).contains(&name_chars) {
        p.name = Some("Enter your full name (2 to 100 characters).");
    } else if !name
        .chars()
        .all(|c| c.is_alphabetic() || " -'.".contains(c))
    {
        p.name = Some("A name may hold letters, spaces, hyphens, apostrophes and dots only.");
    }
    let id = canonical_national_id(&f.national_id);
    if id.is_none() {
        p.national_id = Some("Enter your national ID number: 6 to 20 digits.");
    }
    let phone: String = f.phone.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = phone.strip_prefix('+').unwrap_or(&phone);
    if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        p.phone = Some("Enter a phone number of 7 to 15 digits, optionally starting with +.");
    }
    if p.any() {
        return Err(p);
    }
    Ok((name, id.unwrap_or_default(), phone))
}

fn render(state: &Portal, pass: &Pass, f: &Fields, p: &Problems, note: Option<&str>) -> String {
    let csrf = state.csrf_token("register", &pass.visitor.0.to_string());
    let field = |label: &str, name: &str, value: &str, problem: Option<&str>, kind: &str| {
        let error = problem.map_or(String::new(), |m| {
            format!("<p class=\"error\" id=\"{name}-error\">{}</p>", esc(m))
        });
        format!(
            "<label for=\"{name}\">{label}</label><input id=\"{name}\" name=\"{name}\" \
             type=\"{kind}\" value=\"{}\" required>{error}",
            esc(value)
        )
    };
    let note = note.map_or(String::new(), |n| {
        format!("<p class=\"error\">{}</p>", esc(n))
    });
    let body = format!(
        "<h1>Register</h1><p>It is your turn. Fill in the form to register, then choose an \
         appointment.</p>{note}<form method=\"post\" action=\"/register\">{}{}{}{}\
         <button type=\"submit\">Register</button></form>",
        csrf_field(&csrf),
        field("Full name", "name", &f.name, p.name, "text"),
        field(
            "National ID number",
            "national_id",
            &f.national_id,
            p.national_id,
            "text"
        ),
        field("Phone", "phone", &f.phone, p.phone, "tel"),
    );
    page("Register", &body, "")
}

/// `GET /register`.
pub async fn form<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
) -> Response {
    match state.registry.get(pass.visitor).await {
        Ok(Some(_)) => return Redirect::to("/appointments").into_response(),
        Ok(None) => {}
        Err(_) => return unavailable(),
    }
    Html(render(
        &state,
        &pass,
        &Fields::default(),
        &Problems::default(),
        None,
    ))
    .into_response()
}

/// `POST /register`.
pub async fn submit<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Form(fields): Form<Fields>,
) -> Response {
    let subject = pass.visitor.0.to_string();
    if let Err(refused) = state.csrf_check(("register", &subject), &fields.csrf, "/register") {
        return *refused;
    }
    let (name, national_id, phone) = match validate(&fields) {
        Ok(clean) => clean,
        Err(problems) => {
            let html = render(
                &state,
                &pass,
                &fields,
                &problems,
                Some("Please correct the fields below."),
            );
            return (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response();
        }
    };
    let new = NewRegistration {
        name,
        national_id,
        phone,
    };
    let message = match state.registry.register(pass.visitor, new).await {
        Ok(_) => {
            state.counters.registrations.fetch_add(1, Ordering::Relaxed);
            return Redirect::to("/appointments").into_response();
        }
        Err(RegisterError::NationalIdTaken) => NATIONAL_ID_TAKEN,
        Err(RegisterError::Full) => "Registration is full for now; please try again later.",
        Err(RegisterError::Store(_)) => return unavailable(),
    };
    let html = render(&state, &pass, &fields, &Problems::default(), Some(message));
    (StatusCode::CONFLICT, Html(html)).into_response()
}

/// What a person is told whose national id is registered already: most often themselves,
/// back after more than a day away (a browser is recognised for a day after its last visit).
const NATIONAL_ID_TAKEN: &str = "This national ID number is already registered. If you \
    registered it yourself and stayed away for more than a day, this browser is no longer \
    recognised: your registration and any booking stand. Open the booking link you were \
    given to see or cancel your appointment.";

/// The page when the registrations store cannot be reached: nothing was kept.
fn unavailable() -> Response {
    let body = "<h1>Please try again shortly</h1><p>The registration service is busy;                 nothing was saved.</p><p><a href=\"/register\">Try again</a></p>";
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(page("Please try again shortly", body, "")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str, id: &str, phone: &str) -> Fields {
        Fields {
            name: name.into(),
            national_id: id.into(),
            phone: phone.into(),
            csrf: String::new(),
        }
    }

    #[test]
    fn good_input_is_cleaned_and_bad_input_is_named() {
        let ok = validate(&fields(
            "  Amal   Haddad ",
            "1234567890",
            "+962 79 123 4567",
        ))
        .unwrap();
        assert_eq!(
            ok,
            (
                "Amal Haddad".into(),
                "1234567890".into(),
                "+962791234567".into()
            )
        );
        assert!(validate(&fields("أمل حداد", "123456", "0791234567")).is_ok());
        for typed in ["123456", " 00123456 ", "١٢٣٤٥٦", "0000000000123456"] {
            assert_eq!(
                canonical_national_id(typed).as_deref(),
                Some("123456"),
                "{typed:?}"
            );
        }
        for typed in [
            "12345",
            "000000",
            "12 3456",
            "123456a",
            "",
            "123456789012345678901",
        ] {
            assert_eq!(canonical_national_id(typed), None, "{typed:?}");
        }
        let bad = validate(&fields("<script>", "12ab", "")).unwrap_err();
        assert!(bad.name.is_some() && bad.national_id.is_some() && bad.phone.is_some());
    }
}
