//! The portal's page shell (in either language, with its switch) and escaping. Everything a
//! visitor typed goes through [`esc`] before it is shown.

use super::text::{self, Lang};

/// `text` with the five characters that mean something in HTML replaced by entities.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// Logical properties (inline/block) so that one sheet lays out both directions.
const STYLE: &str = "body{font-family:system-ui,'Noto Naskh Arabic','Segoe UI','DejaVu Sans',\
sans-serif;margin:0;background:#f4f6f8;color:#1d2530}header{background:#0b4f6c;color:#fff;\
padding:.8rem 1.2rem;font-weight:600;display:flex;justify-content:space-between;gap:1rem;\
flex-wrap:wrap}header a{color:#fff}main{max-width:46rem;margin:1.5rem auto;padding:1.5rem;\
background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}@media(max-width:48rem){\
main{margin:.6rem;padding:1rem}}h1{font-size:1.5rem;margin-top:0}p{line-height:1.7}\
label{display:block;margin-block:.8rem .2rem}input,select{font-size:1rem;padding:.45rem;\
width:100%;box-sizing:border-box}button{font-size:1rem;padding:.5rem 1rem;\
margin-block:.6rem .2rem;margin-inline:0 .3rem;border-radius:.4rem;border:1px solid #0b4f6c;\
background:#0b4f6c;color:#fff}button.plain{background:#fff;color:#0b4f6c}\
.error{color:#a4161a;margin:.2rem 0}.scroll{overflow-x:auto}table{border-collapse:collapse;\
width:100%;font-size:.9rem}td,th{border:1px solid #d5dbe1;padding:.25rem;text-align:center}\
th small{display:block;font-weight:400;color:#5b6773}td form button{margin:0;\
padding:.2rem .5rem;font-size:.85rem}.count{font-size:2.2rem;font-weight:700}\
.muted{color:#5b6773}code{direction:ltr;unicode-bidi:embed;word-break:break-all}";

/// A whole page around `body` in `lang`, with a title, the portal's header and its language
/// switch (a link to this page in the other language); `extra_head` is trusted markup (a
/// script tag).
pub fn page(lang: Lang, title: &str, body: &str, extra_head: &str) -> String {
    page_switching_at(lang, title, body, extra_head, "")
}

/// [`page`] for an answer to a form, whose address cannot be opened again: the switch opens
/// `switch_path` (a fixed path of the portal, never one taken from the request) instead.
pub fn page_switching_at(
    lang: Lang,
    title: &str,
    body: &str,
    extra_head: &str,
    switch_path: &'static str,
) -> String {
    let other = lang.other();
    format!(
        "<!doctype html><html lang=\"{code}\" dir=\"{dir}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style>{extra_head}</head><body>\
         <header><span>{portal}</span><a id=\"lang-switch\" href=\"{switch_path}?lang={other_code}\" \
         hreflang=\"{other_code}\" lang=\"{other_code}\">{other_name}</a></header>\
         <main>{body}</main></body></html>",
        code = lang.code(),
        dir = lang.dir(),
        t = esc(title),
        portal = lang.say(text::PORTAL),
        other_code = other.code(),
        other_name = other.own_name(),
    )
}

/// A hidden CSRF field.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

#[cfg(test)]
mod tests {
    use super::{Lang, esc, page, page_switching_at};

    #[test]
    fn pages_carry_their_language_direction_and_a_switch_to_the_other() {
        let ar = page(Lang::Arabic, "عنوان", "<p>x</p>", "");
        assert!(
            ar.starts_with("<!doctype html><html lang=\"ar\" dir=\"rtl\">"),
            "{ar}"
        );
        assert!(ar.contains("href=\"?lang=en\""), "{ar}");
        let en = page_switching_at(Lang::English, "<Title>", "", "", "/appointments");
        assert!(en.contains("lang=\"en\" dir=\"ltr\""), "{en}");
        assert!(en.contains("href=\"/appointments?lang=ar\""), "{en}");
        assert!(en.contains("<title>&lt;Title&gt;</title>"), "{en}");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }
}
