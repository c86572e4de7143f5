//! Page templates an operator puts in place of the built-in pages (minijinja, HTML
//! auto-escaping on, undefined variables an error). Each is compiled and rendered once with
//! sample values at start, so a template that cannot render is a configuration error naming
//! its file, never a broken page during a surge.
//!
//! Variables (the same the built-in pages show):
//! - every page: `lang` (`"en"` or `"ar"`), `dir` (`"ltr"` or `"rtl"`);
//! - `waiting`: `position`, `waiting`, `eta_seconds`, `refresh_seconds`, `leave_path`;
//! - `refusal`: `status` (`"full"`, `"closed"`, `"limited"` or `"unavailable"`),
//!   `retry_after_seconds`;
//! - `upstream_error`: `status` (`"bad_gateway"` or `"gateway_timeout"`), `http_status`
//!   (502 or 504), `retry_after_seconds`.

use std::path::PathBuf;

use minijinja::{Environment, UndefinedBehavior, Value, context};

use super::Lang;

/// A template file and its text.
#[derive(Clone, Debug)]
pub struct PageSource {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// `[pages]`: the templates given.
#[derive(Clone, Debug, Default)]
pub struct PageSources {
    /// The waiting page.
    pub waiting: Option<PageSource>,
    /// The page of a refusal (full, closed, limited, unavailable).
    pub refusal: Option<PageSource>,
    /// The page of a 502 or 504.
    pub upstream_error: Option<PageSource>,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
    waiting: bool,
    refusal: bool,
    upstream_error: bool,
}

const WAITING: &str = "waiting.html";
const REFUSAL: &str = "refusal.html";
const UPSTREAM_ERROR: &str = "upstream_error.html";

impl Templates {
    /// Compiles the templates given and renders each once with sample values.
    ///
    /// # Errors
    /// The key and what is wrong (naming the file and the template's own message).
    pub fn compile(sources: &PageSources) -> Result<Templates, (&'static str, String)> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut add =
            |key: &'static str, name: &'static str, source: &Option<PageSource>, sample: Value| {
                let Some(source) = source else {
                    return Ok(false);
                };
                let problem = |e: minijinja::Error| {
                    (
                        key,
                        format!(
                            "the template {} cannot be used: {e:#}",
                            source.path.display()
                        ),
                    )
                };
                env.add_template_owned(name, source.text.clone())
                    .map_err(problem)?;
                env.get_template(name)
                    .and_then(|t| t.render(sample))
                    .map_err(problem)?;
                Ok(true)
            };
        let waiting = add(
            "pages.waiting",
            WAITING,
            &sources.waiting,
            waiting_vars(Lang::English, 3, 10, 12, 6, "/surgegate/leave"),
        )?;
        let refusal = add(
            "pages.refusal",
            REFUSAL,
            &sources.refusal,
            refusal_vars(Lang::Arabic, "full", 30),
        )?;
        let upstream_error = add(
            "pages.upstream_error",
            UPSTREAM_ERROR,
            &sources.upstream_error,
            upstream_vars(Lang::English, 502, 5),
        )?;
        Ok(Templates {
            env,
            waiting,
            refusal,
            upstream_error,
        })
    }

    /// Whether a waiting or refusal template replaces a built-in room page.
    pub fn has_room_pages(&self) -> bool {
        self.waiting || self.refusal
    }

    /// The waiting page, if a template is given.
    pub fn waiting(
        &self,
        lang: Lang,
        position: u64,
        waiting: u64,
        eta_seconds: u64,
        refresh_seconds: u64,
        leave_path: &str,
    ) -> Option<String> {
        self.render(
            self.waiting,
            WAITING,
            waiting_vars(
                lang,
                position,
                waiting,
                eta_seconds,
                refresh_seconds,
                leave_path,
            ),
        )
    }

    /// A refusal page, if a template is given.
    pub fn refusal(&self, lang: Lang, status: &str, retry_after_seconds: u64) -> Option<String> {
        self.render(
            self.refusal,
            REFUSAL,
            refusal_vars(lang, status, retry_after_seconds),
        )
    }

    /// A 502 or 504 page, if a template is given.
    pub fn upstream_error(
        &self,
        lang: Lang,
        http_status: u16,
        retry_after_seconds: u64,
    ) -> Option<String> {
        self.render(
            self.upstream_error,
            UPSTREAM_ERROR,
            upstream_vars(lang, http_status, retry_after_seconds),
        )
    }

    fn render(&self, given: bool, name: &str, vars: Value) -> Option<String> {
        if !given {
            return None;
        }
        match self.env.get_template(name).and_then(|t| t.render(vars)) {
            Ok(page) => Some(page),
            Err(e) => {
                // Checked at start with the same variables; the built-in page stands in.
                tracing::error!(template = name, error = %e, "a page template failed; the built-in page was sent");
                None
            }
        }
    }
}

fn waiting_vars(
    lang: Lang,
    position: u64,
    waiting: u64,
    eta_seconds: u64,
    refresh_seconds: u64,
    leave_path: &str,
) -> Value {
    context! { lang => lang.code(), dir => lang.dir(), position, waiting, eta_seconds, refresh_seconds, leave_path }
}

fn refusal_vars(lang: Lang, status: &str, retry_after_seconds: u64) -> Value {
    context! { lang => lang.code(), dir => lang.dir(), status, retry_after_seconds }
}

fn upstream_vars(lang: Lang, http_status: u16, retry_after_seconds: u64) -> Value {
    let status = if http_status == 504 {
        "gateway_timeout"
    } else {
        "bad_gateway"
    };
    context! { lang => lang.code(), dir => lang.dir(), status, http_status, retry_after_seconds }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn source(text: &str) -> Option<PageSource> {
        Some(PageSource {
            path: PathBuf::from("t.html"),
            text: text.into(),
        })
    }

    #[test]
    fn templates_render_their_variables_escaped() {
        let sources = PageSources {
            waiting: source("<p dir={{ dir }}>{{ position }}/{{ waiting }} {{ leave_path }}</p>"),
            ..PageSources::default()
        };
        let t = Templates::compile(&sources).unwrap();
        assert!(t.has_room_pages());
        let page = t.waiting(Lang::Arabic, 4, 9, 10, 5, "/q/<leave>").unwrap();
        // Entities in attributes and text read back as the same characters in a browser.
        assert_eq!(page, "<p dir=rtl>4/9 &#x2f;q&#x2f;&lt;leave&gt;</p>");
        assert!(t.refusal(Lang::English, "full", 3).is_none());
    }

    #[test]
    fn a_broken_template_is_an_error_naming_its_key_and_file() {
        for bad in [
            "{% if %}",
            "{{ no_such_variable }}",
            "{{ position | no_such_filter }}",
        ] {
            let sources = PageSources {
                waiting: source(bad),
                ..PageSources::default()
            };
            let (key, problem) = Templates::compile(&sources).err().expect(bad);
            assert_eq!(key, "pages.waiting");
            assert!(problem.contains("t.html"), "{problem}");
        }
    }
}
