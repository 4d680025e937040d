//! The AHC HRSN Questionnaire, read once from its data file: each question and answer with
//! its wording in every language the file carries (FHIR's translation extension).

use coproduce_core::social::ahc::{self, Domain};
use serde_json::Value;
use std::sync::LazyLock;

/// The Questionnaire as FHIR JSON (the English wording is the tool's; the others are ours).
pub const AHC_JSON: &str = include_str!("../../questionnaires/ahc-hrsn.json");

const TRANSLATION: &str = "http://hl7.org/fhir/StructureDefinition/translation";

/// Text in English and its translations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    pub english: String,
    pub translations: Vec<(String, String)>,
}

impl Wording {
    fn read(text: &Value, element: &Value) -> Wording {
        let translations = element["extension"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["url"] == TRANSLATION)
            .filter_map(|e| {
                let part = |name: &str| {
                    e["extension"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|x| x["url"] == name)
                        .cloned()
                };
                let lang = part("lang")?["valueCode"].as_str()?.to_string();
                let content = part("content")?["valueString"].as_str()?.to_string();
                Some((lang, content))
            })
            .collect();
        Wording {
            english: text.as_str().unwrap_or_default().to_string(),
            translations,
        }
    }

    /// The wording in `lang` (a tag such as `es` or `pt-BR`), else English.
    pub fn text(&self, lang: &str) -> &str {
        self.translations
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(lang))
            .or_else(|| {
                let base = |l: &str| l.split('-').next().unwrap_or_default().to_ascii_lowercase();
                self.translations
                    .iter()
                    .find(|(l, _)| base(l) == base(lang))
            })
            .map_or(&self.english, |(_, t)| t)
    }
}

/// One answer a question offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerOption {
    pub code: String,
    pub wording: Wording,
}

impl AnswerOption {
    pub fn text(&self, lang: &str) -> &str {
        self.wording.text(lang)
    }
}

/// One question of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Its LOINC code, which is its linkId.
    pub code: String,
    pub domain: Domain,
    pub multiple: bool,
    pub wording: Wording,
    pub options: Vec<AnswerOption>,
}

impl Question {
    pub fn text(&self, lang: &str) -> &str {
        self.wording.text(lang)
    }
}

/// The screen's questions in order.
#[derive(Debug, Clone)]
pub struct Questionnaire {
    pub questions: Vec<Question>,
}

impl Questionnaire {
    /// The questions of one domain, in order.
    pub fn of(&self, domain: Domain) -> impl Iterator<Item = &Question> {
        self.questions.iter().filter(move |q| q.domain == domain)
    }
}

static AHC: LazyLock<Questionnaire> = LazyLock::new(|| {
    let v: Value = serde_json::from_str(AHC_JSON).expect("the AHC Questionnaire is JSON");
    let questions = v["item"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let code = i["linkId"].as_str()?;
            let item = ahc::item(code)?;
            let options = i["answerOption"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| AnswerOption {
                    code: o["valueCoding"]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    wording: Wording::read(
                        &o["valueCoding"]["display"],
                        &o["valueCoding"]["_display"],
                    ),
                })
                .collect();
            Some(Question {
                code: code.to_string(),
                domain: item.domain,
                multiple: item.multiple,
                wording: Wording::read(&i["text"], &i["_text"]),
                options,
            })
        })
        .collect();
    Questionnaire { questions }
});

/// The AHC HRSN core Questionnaire.
pub fn questionnaire() -> &'static Questionnaire {
    &AHC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_questionnaire_offers_exactly_what_core_scores_in_four_languages() {
        let q = questionnaire();
        assert_eq!(q.questions.len(), ahc::ITEMS.len());
        for (question, item) in q.questions.iter().zip(ahc::ITEMS.iter()) {
            assert_eq!(question.code, item.code);
            assert_eq!(question.multiple, item.multiple);
            let offered: Vec<&str> = question.options.iter().map(|o| o.code.as_str()).collect();
            let scored: Vec<&str> = item.answers.iter().map(|a| a.code).collect();
            assert_eq!(offered, scored, "{}", item.code);
            for lang in ["es", "pt-BR", "ht"] {
                assert_ne!(
                    question.text(lang),
                    question.text("en"),
                    "{} {lang}",
                    item.code
                );
                for o in &question.options {
                    assert!(!o.text(lang).is_empty(), "{} {} {lang}", item.code, o.code);
                }
            }
        }
        assert_eq!(q.questions[0].text("pt"), q.questions[0].text("pt-BR"));
    }

    #[test]
    fn the_questionnaire_is_valid_fhir() {
        let v: Value = serde_json::from_str(AHC_JSON).unwrap();
        coproduce_fhir::validate::validate_resource(&v).unwrap();
        assert_eq!(v["url"], super::super::AHC_URL);
        assert_eq!(v["code"][0]["code"], ahc::PANEL);
    }
}
