//! Narrative XHTML rules (FHIR R4 txt-1 and txt-2): a single `div` in the XHTML namespace,
//! only basic formatting elements, no scripts, event handlers, forms, DOCTYPE or entities
//! beyond XML's own five (so no external entities).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

const ALLOWED: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "b",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "ul",
    "var",
];

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Checks a Narrative.div value; the error says what is not allowed.
pub fn check_narrative(div: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(div);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("the narrative is not well-formed XHTML: {e}"))?;
        match event {
            Event::Start(e) => {
                check_element(&e, depth == 0, &mut seen_root)?;
                depth += 1;
            }
            Event::Empty(e) => {
                check_element(&e, depth == 0, &mut seen_root)?;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) => {
                if depth == 0 && !t.trim().is_empty() {
                    return Err("the narrative has text outside its div".into());
                }
            }
            Event::GeneralRef(r) => {
                let name = r.to_string();
                let known = matches!(name.as_str(), "lt" | "gt" | "amp" | "quot" | "apos")
                    || name.starts_with('#');
                if !known {
                    return Err(format!(
                        "invalid entity '&{name};' in the narrative (only XML's own and numeric references are allowed)"
                    ));
                }
            }
            Event::DocType(_) => {
                return Err("a DOCTYPE is not allowed in the narrative".into());
            }
            Event::PI(_) | Event::Decl(_) => {
                return Err("processing instructions are not allowed in the narrative".into());
            }
            Event::CData(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err("the narrative must be a div element".into());
    }
    Ok(())
}

fn check_element(e: &BytesStart<'_>, is_root: bool, seen_root: &mut bool) -> Result<(), String> {
    let local = e.local_name();
    let name = AsRef::<str>::as_ref(&local).to_ascii_lowercase();
    if is_root {
        if *seen_root {
            return Err("the narrative must be a single div element".into());
        }
        *seen_root = true;
        if name != "div" {
            return Err(format!("the narrative must be a div element, not '{name}'"));
        }
        let ns = e
            .attributes()
            .flatten()
            .find(|a| AsRef::<str>::as_ref(&a.key) == "xmlns")
            .map(|a| a.value.into_owned());
        if ns.as_deref() != Some(XHTML_NS) {
            return Err(format!(
                "the narrative div must be in the XHTML namespace ({XHTML_NS})"
            ));
        }
    }
    if !ALLOWED.contains(&name.as_str()) {
        return Err(format!(
            "the element '{name}' is not allowed in a narrative (only basic formatting)"
        ));
    }
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("bad attribute in the narrative: {err}"))?;
        let key = AsRef::<str>::as_ref(&attr.key).to_ascii_lowercase();
        if key.starts_with("on") {
            return Err(format!(
                "the event attribute '{key}' is not allowed in a narrative"
            ));
        }
        let value = attr.value.to_ascii_lowercase();
        if (key == "href" || key == "src") && value.trim_start().starts_with("javascript:") {
            return Err("javascript: links are not allowed in a narrative".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_basic_formatting() {
        let ok = r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; b &#169;</p><br/></div>"#;
        assert_eq!(check_narrative(ok), Ok(()));
    }

    #[test]
    fn refuses_script_events_entities_and_doctype() {
        for bad in [
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">a</p></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml">&reg;</div>"#,
            r#"<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><div xmlns="http://www.w3.org/1999/xhtml">&x;</div>"#,
            r#"<div>no namespace</div>"#,
            r#"<p xmlns="http://www.w3.org/1999/xhtml">not a div</p>"#,
        ] {
            assert!(check_narrative(bad).is_err(), "{bad}");
        }
    }
}
