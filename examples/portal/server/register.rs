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
use super::text::{self, Lang, Phrase};
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
    pub name: Option<Phrase>,
    pub national_id: Option<Phrase>,
    pub phone: Option<Phrase>,
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
        p.name = Some(Phrase {
            ar: "اكتب اسمك الكامل (من ٢ إلى ١٠٠ حرف).",
            en: "Enter your full name (2 to 100 characters).",
        });
    } else if !name
        .chars()
        .all(|c| c.is_alphabetic() || " -'.".contains(c))
    {
        p.name = Some(Phrase {
            ar: "يتكوّن الاسم من حروف ومسافات وشرطات وفواصل عليا ونقاط فقط.",
            en: "A name may hold letters, spaces, hyphens, apostrophes and dots only.",
        });
    }
    let id = canonical_national_id(&f.national_id);
    if id.is_none() {
        p.national_id = Some(Phrase {
            ar: "اكتب رقم هويتك الوطنية: من ٦ إلى ٢٠ رقمًا.",
            en: "Enter your national ID number: 6 to 20 digits.",
        });
    }
    let phone: String = f.phone.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = phone.strip_prefix('+').unwrap_or(&phone);
    if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        p.phone = Some(Phrase {
            ar: "اكتب رقم هاتف من ٧ إلى ١٥ رقمًا، وقد يبدأ بعلامة +.",
            en: "Enter a phone number of 7 to 15 digits, optionally starting with +.",
        });
    }
    if p.any() {
        return Err(p);
    }
    Ok((name, id.unwrap_or_default(), phone))
}

fn render(
    state: &Portal,
    lang: Lang,
    pass: &Pass,
    (f, p): (&Fields, &Problems),
    note: Option<Phrase>,
) -> String {
    let csrf = state.csrf_token("register", &pass.visitor.0.to_string());
    let field = |label: Phrase, name: &str, value: &str, problem: Option<Phrase>, kind: &str| {
        let error = problem.map_or(String::new(), |m| {
            format!(
                "<p class=\"error\" id=\"{name}-error\">{}</p>",
                esc(lang.say(m))
            )
        });
        // Numbers are typed left to right on either page.
        let dir = if kind == "text" && name == "name" {
            "auto"
        } else {
            "ltr"
        };
        format!(
            "<label for=\"{name}\">{}</label><input id=\"{name}\" name=\"{name}\" \
             type=\"{kind}\" dir=\"{dir}\" value=\"{}\" required>{error}",
            lang.say(label),
            esc(value)
        )
    };
    let note = note.map_or(String::new(), |n| {
        format!("<p class=\"error\">{}</p>", esc(lang.say(n)))
    });
    let fields = [
        field(
            Phrase {
                ar: "الاسم الكامل",
                en: "Full name",
            },
            "name",
            &f.name,
            p.name,
            "text",
        ),
        field(
            Phrase {
                ar: "رقم الهوية الوطنية",
                en: "National ID number",
            },
            "national_id",
            &f.national_id,
            p.national_id,
            "text",
        ),
        field(
            Phrase {
                ar: "رقم الهاتف",
                en: "Phone",
            },
            "phone",
            &f.phone,
            p.phone,
            "tel",
        ),
    ]
    .concat();
    let (title, intro) = lang.pick(
        ("التسجيل", "حان دورك. املأ النموذج للتسجيل، ثم اختر موعدًا."),
        (
            "Register",
            "It is your turn. Fill in the form to register, then choose an appointment.",
        ),
    );
    let body = format!(
        "<h1>{title}</h1><p>{intro}</p>{note}<form method=\"post\" action=\"/register\">{}\
         {fields}<button type=\"submit\">{title}</button></form>",
        csrf_field(&csrf),
    );
    page(lang, title, &body, "")
}

/// `GET /register`.
pub async fn form<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
) -> Response {
    match state.registry.get(pass.visitor).await {
        Ok(Some(_)) => return Redirect::to("/appointments").into_response(),
        Ok(None) => {}
        Err(_) => return unavailable(lang),
    }
    let blank = (&Fields::default(), &Problems::default());
    Html(render(&state, lang, &pass, blank, None)).into_response()
}

/// `POST /register`.
pub async fn submit<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
    Form(fields): Form<Fields>,
) -> Response {
    let subject = pass.visitor.0.to_string();
    if let Err(refused) = state.csrf_check(lang, ("register", &subject), &fields.csrf, "/register")
    {
        return *refused;
    }
    let (name, national_id, phone) = match validate(&fields) {
        Ok(clean) => clean,
        Err(problems) => {
            let note = Phrase {
                ar: "يُرجى تصحيح الحقول أدناه.",
                en: "Please correct the fields below.",
            };
            let html = render(&state, lang, &pass, (&fields, &problems), Some(note));
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
        Err(RegisterError::Full) => Phrase {
            ar: "اكتمل التسجيل حاليًا؛ يُرجى المحاولة لاحقًا.",
            en: "Registration is full for now; please try again later.",
        },
        Err(RegisterError::Store(_)) => return unavailable(lang),
    };
    let html = render(
        &state,
        lang,
        &pass,
        (&fields, &Problems::default()),
        Some(message),
    );
    (StatusCode::CONFLICT, Html(html)).into_response()
}

/// What a person is told whose national id is registered already: most often themselves,
/// back after more than a day away (a browser is recognised for a day after its last visit).
const NATIONAL_ID_TAKEN: Phrase = Phrase {
    ar: "رقم الهوية الوطنية هذا مسجّل من قبل. إن كنت سجّلته بنفسك وغبت أكثر من يوم، فلم يعد هذا \
        المتصفح معروفًا: تسجيلك وأي حجز لك باقيان. افتح رابط الحجز الذي أُعطي لك لترى موعدك أو تلغيه.",
    en: "This national ID number is already registered. If you registered it yourself and \
        stayed away for more than a day, this browser is no longer recognised: your \
        registration and any booking stand. Open the booking link you were given to see or \
        cancel your appointment.",
};

/// The page when the registrations store cannot be reached: nothing was kept.
fn unavailable(lang: Lang) -> Response {
    let title = lang.say(text::TRY_AGAIN_SHORTLY);
    let (busy, again) = lang.pick(
        ("خدمة التسجيل مشغولة؛ لم يُحفظ شيء.", "حاول مرة أخرى"),
        (
            "The registration service is busy; nothing was saved.",
            "Try again",
        ),
    );
    let body = format!("<h1>{title}</h1><p>{busy}</p><p><a href=\"/register\">{again}</a></p>");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(page(lang, title, &body, "")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{Fields, canonical_national_id, validate};

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
