//! The portal's page shell and escaping. Everything a visitor typed goes through [`esc`]
//! before it is shown.

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

const STYLE: &str = "body{font-family:system-ui,'Segoe UI',sans-serif;margin:0;background:#f4f6f8;\
color:#1d2530}header{background:#0b4f6c;color:#fff;padding:.8rem 1.2rem;font-weight:600}\
main{max-width:46rem;margin:1.5rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;\
box-shadow:0 1px 4px #0002}label{display:block;margin:.8rem 0 .2rem}input,select{font-size:1rem;\
padding:.45rem;width:100%;box-sizing:border-box}button{font-size:1rem;padding:.5rem 1rem;\
margin:.6rem .3rem .2rem 0;border-radius:.4rem;border:1px solid #0b4f6c;background:#0b4f6c;\
color:#fff}button.plain{background:#fff;color:#0b4f6c}.error{color:#a4161a;margin:.2rem 0}\
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{border:1px solid #d5dbe1;\
padding:.25rem;text-align:center}td form button{margin:0;padding:.2rem .5rem;font-size:.85rem}\
.count{font-size:2.2rem;font-weight:700}.muted{color:#5b6773}";

/// A whole page around `body`, with a title; `extra_head` is trusted markup (a script tag).
pub fn page(title: &str, body: &str, extra_head: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style>{extra_head}</head><body>\
         <header>National e-services portal</header><main>{body}</main></body></html>",
        t = esc(title)
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
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }
}
