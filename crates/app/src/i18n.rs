//! Translations with Fluent. The patient-facing messages (`patient.ftl`) exist in English,
//! Spanish, Brazilian Portuguese and Haitian Creole, and a test fails if one language misses a
//! key; the team's pages (`team.ftl`) are in English for now and fall back to it.
//!
//! The files are compiled into the binary, so nothing is read at run time.

use coproduce_core::calendar::BusinessCalendar;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use unic_langid::LanguageIdentifier;

/// The languages of the app, with their names in their own language.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("es", "Español"),
    ("pt-BR", "Português (Brasil)"),
    ("ht", "Kreyòl ayisyen"),
];

/// A language's name in itself ("Español") for a code the app speaks, else the code.
pub fn language_name(code: &str) -> String {
    LANGUAGES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code.to_string(), |(_, n)| n.to_string())
}

/// The message files: (language, file name, text).
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "en",
        "patient.ftl",
        include_str!("../locales/en/patient.ftl"),
    ),
    (
        "es",
        "patient.ftl",
        include_str!("../locales/es/patient.ftl"),
    ),
    (
        "pt-BR",
        "patient.ftl",
        include_str!("../locales/pt-BR/patient.ftl"),
    ),
    (
        "ht",
        "patient.ftl",
        include_str!("../locales/ht/patient.ftl"),
    ),
    ("en", "team.ftl", include_str!("../locales/en/team.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

struct Catalog {
    bundles: HashMap<&'static str, Bundle>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut bundles = HashMap::new();
        for (lang, _) in LANGUAGES {
            let id: LanguageIdentifier = lang.parse().unwrap_or_default();
            let mut b = FluentBundle::new_concurrent(vec![id]);
            // No Unicode isolation marks: they show as boxes in some phone fonts.
            b.set_use_isolating(false);
            for (l, name, text) in FILES {
                if l == lang {
                    match FluentResource::try_new((*text).to_string()) {
                        Ok(r) => {
                            if let Err(e) = b.add_resource(r) {
                                tracing::error!(?e, lang, name, "duplicate message ids");
                            }
                        }
                        Err((r, e)) => {
                            tracing::error!(?e, lang, name, "a message file has errors");
                            let _ = b.add_resource(r);
                        }
                    }
                }
            }
            bundles.insert(*lang, b);
        }
        Catalog { bundles }
    })
}

/// The supported language closest to a requested one ("es-MX" -> "es", "pt" -> "pt-BR").
pub fn supported(requested: &str) -> Option<&'static str> {
    let r = requested.trim();
    if r.is_empty() {
        return None;
    }
    if let Some((code, _)) = LANGUAGES.iter().find(|(c, _)| c.eq_ignore_ascii_case(r)) {
        return Some(code);
    }
    let primary = r.split(['-', '_']).next().unwrap_or(r).to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|(c, _)| c.split('-').next().is_some_and(|p| p == primary))
        .map(|(c, _)| *c)
}

/// The translator for one page: its language (falling back to English), and the time zone
/// its times are shown and read in (the site's; UTC unless set).
#[derive(Debug, Clone)]
pub struct Tr {
    pub lang: &'static str,
    calendar: Arc<BusinessCalendar>,
}

fn utc() -> Arc<BusinessCalendar> {
    static UTC: OnceLock<Arc<BusinessCalendar>> = OnceLock::new();
    UTC.get_or_init(|| Arc::new(BusinessCalendar::default()))
        .clone()
}

impl Tr {
    pub fn new(lang: &str) -> Tr {
        Tr {
            lang: supported(lang).unwrap_or("en"),
            calendar: utc(),
        }
    }

    /// The same translator, showing and reading times in the calendar's zone.
    pub fn in_zone(mut self, calendar: Arc<BusinessCalendar>) -> Tr {
        self.calendar = calendar;
        self
    }

    /// A moment as the site's clock shows it: `2026-11-27 17:00`.
    pub fn when(&self, t: time::OffsetDateTime) -> String {
        when(self.calendar.local_time(t))
    }

    /// A moment with the zone beside it, where it matters (deadlines): `2026-11-27 17:00 EST`.
    pub fn when_zoned(&self, t: time::OffsetDateTime) -> String {
        format!("{} {}", self.when(t), self.calendar.zone_label(t))
    }

    /// The day a moment falls on at the site: `2026-11-27`.
    pub fn day(&self, t: time::OffsetDateTime) -> String {
        day(self.calendar.local_time(t))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        let cat = catalog();
        for lang in [self.lang, "en"] {
            let Some(b) = cat.bundles.get(lang) else {
                continue;
            };
            let (id, attr) = match key.split_once('.') {
                Some((i, a)) => (i, Some(a)),
                None => (key, None),
            };
            let Some(msg) = b.get_message(id) else {
                continue;
            };
            let pattern = match attr {
                Some(a) => msg.get_attribute(a).map(|x| x.value()),
                None => msg.value(),
            };
            if let Some(p) = pattern {
                let mut errors = Vec::new();
                let s = b.format_pattern(p, args, &mut errors);
                if !errors.is_empty() {
                    tracing::warn!(key, lang, ?errors, "a message did not format cleanly");
                }
                return s.into_owned();
            }
        }
        tracing::warn!(key, "a message key has no text");
        key.to_string()
    }

    /// The best supported language of an Accept-Language header ("es-MX,es;q=0.9,en;q=0.8").
    pub fn from_accept_language(header: &str) -> Tr {
        let mut ranked: Vec<(f32, &str)> = header
            .split(',')
            .filter_map(|part| {
                let mut bits = part.trim().split(';');
                let tag = bits.next()?.trim();
                let q = bits
                    .find_map(|b| b.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, tag))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let lang = ranked
            .into_iter()
            .filter(|(q, _)| *q > 0.0)
            .find_map(|(_, tag)| supported(tag))
            .unwrap_or("en");
        Tr {
            lang,
            calendar: utc(),
        }
    }

    /// A number written as the reader's language writes it: a decimal comma in Spanish,
    /// Portuguese and Haitian Creole ("89,6"), a point in English ("89.6"). Takes the number
    /// already rounded as text ("89.6", "131/92").
    pub fn number(&self, plain: &str) -> String {
        match self.lang {
            "es" | "pt-BR" | "ht" => plain.replace('.', ","),
            _ => plain.to_string(),
        }
    }

    /// Whether a key has a message (in the reader's language or in English).
    pub fn has(&self, key: &str) -> bool {
        let cat = catalog();
        let id = key.split_once('.').map_or(key, |(i, _)| i);
        [self.lang, "en"]
            .iter()
            .any(|l| cat.bundles.get(l).is_some_and(|b| b.has_message(id)))
    }

    /// The message for a key.
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The message for a key with its arguments filled in.
    pub fn with(&self, key: &str, args: &[(&str, String)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, FluentValue::from(v.clone()));
        }
        self.format(key, Some(&a))
    }

    /// The message for a key with one argument (for templates).
    pub fn arg(&self, key: &str, name: &str, value: &str) -> String {
        self.with(key, &[(name, value.to_string())])
    }

    /// A number argument (for plurals).
    pub fn count(&self, key: &str, name: &str, n: impl std::borrow::Borrow<usize>) -> String {
        let mut a = FluentArgs::new();
        a.set(name, FluentValue::from(*n.borrow()));
        self.format(key, Some(&a))
    }

    pub fn languages(&self) -> &'static [(&'static str, &'static str)] {
        LANGUAGES
    }
}

/// Shared so a page's view can hold one cheaply.
pub type SharedTr = Arc<Tr>;

/// The message ids (and `id.attribute`s) of one file, for the completeness test.
pub fn keys_of(text: &str) -> Vec<String> {
    use fluent_syntax::ast::Entry;
    let resource = match fluent_syntax::parser::parse(text) {
        Ok(r) => r,
        Err((r, _)) => r,
    };
    let mut keys = Vec::new();
    for e in resource.body {
        if let Entry::Message(m) = e {
            keys.push(m.id.name.to_string());
            for a in m.attributes {
                keys.push(format!("{}.{}", m.id.name, a.id.name));
            }
        }
    }
    keys
}

/// A moment as it is, in its own offset (UTC for stored instants): `2026-11-27 10:00`. Pages
/// use [`Tr::when`], in the site's zone.
pub fn when(t: time::OffsetDateTime) -> String {
    let d = t.date();
    format!(
        "{}-{:02}-{:02} {:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        t.hour(),
        t.minute()
    )
}

/// A moment's day in its own offset: `2026-11-27`. Pages use [`Tr::day`].
pub fn day(t: time::OffsetDateTime) -> String {
    when(t).get(..10).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_with_the_languages_decimal_mark() {
        assert_eq!(Tr::new("en").number("89.6"), "89.6");
        assert_eq!(Tr::new("es").number("89.6"), "89,6");
        assert_eq!(Tr::new("pt-BR").number("7.3"), "7,3");
        assert_eq!(Tr::new("ht").number("131/92"), "131/92");
    }

    #[test]
    fn times_show_and_read_on_the_sites_clock() {
        let ny = BusinessCalendar::new(
            "America/New_York",
            "08:00",
            "17:00",
            &["monday".to_string()],
            &[],
        )
        .expect("a calendar");
        let t = Tr::new("en").in_zone(Arc::new(ny));
        let winter = time::macros::datetime!(2026-11-30 22:00 UTC);
        assert_eq!(t.when(winter), "2026-11-30 17:00");
        assert_eq!(t.when_zoned(winter), "2026-11-30 17:00 EST");
        assert_eq!(
            t.day(time::macros::datetime!(2026-12-01 03:00 UTC)),
            "2026-11-30"
        );
        let summer = time::macros::datetime!(2026-07-01 21:00 UTC);
        assert_eq!(t.when_zoned(summer), "2026-07-01 17:00 EDT");
        // Without a zone, UTC.
        assert_eq!(Tr::new("en").when_zoned(winter), "2026-11-30 22:00 UTC");
    }

    #[test]
    fn every_patient_facing_key_exists_in_all_four_languages() {
        let english: Vec<String> = FILES
            .iter()
            .filter(|(l, f, _)| *l == "en" && *f == "patient.ftl")
            .flat_map(|(_, _, t)| keys_of(t))
            .collect();
        assert!(english.len() > 50, "{} keys", english.len());
        let mut missing = Vec::new();
        for (lang, _) in LANGUAGES {
            let file = FILES
                .iter()
                .find(|(l, f, _)| l == lang && *f == "patient.ftl")
                .map(|(_, _, t)| keys_of(t))
                .unwrap_or_default();
            for k in &english {
                if !file.contains(k) {
                    missing.push(format!("{lang}: {k}"));
                }
            }
            for k in &file {
                if !english.contains(k) {
                    missing.push(format!("{lang} has {k}, which English does not"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "missing translations:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn every_message_file_parses_without_errors() {
        for (lang, name, text) in FILES {
            if let Err((_, errors)) = fluent_syntax::parser::parse(*text) {
                panic!("{lang}/{name}: {errors:?}");
            }
        }
    }

    #[test]
    fn languages_are_matched_by_their_primary_tag() {
        assert_eq!(supported("es-MX"), Some("es"));
        assert_eq!(supported("pt"), Some("pt-BR"));
        assert_eq!(supported("PT-br"), Some("pt-BR"));
        assert_eq!(supported("ht"), Some("ht"));
        assert_eq!(supported("fr"), None);
        assert_eq!(Tr::new("fr").lang, "en");
        assert_eq!(
            Tr::from_accept_language("fr-CA,ht;q=0.8,es;q=0.9").lang,
            "es"
        );
        assert_eq!(Tr::from_accept_language("pt-BR,pt;q=0.9").lang, "pt-BR");
        assert_eq!(Tr::from_accept_language("").lang, "en");
    }

    #[test]
    fn messages_are_formatted_with_their_arguments() {
        let es = Tr::new("es");
        assert_eq!(es.t("nav-home"), "Inicio");
        let en = Tr::new("en");
        assert_eq!(
            en.with("reading-not-a-number", &[("value", "seven".into())]),
            "'seven' is not a number. Type digits, like 7.2."
        );
        // A key only in the team's English file falls back to English.
        assert_eq!(Tr::new("ht").t("team-home-title"), en.t("team-home-title"));
    }
}
