//! Self-started treatment protocols as data: a TOML file (see
//! `protocols/copd-rescue-pack.toml`, the default) read into the rules of
//! [`coproduce_core::rescue::Protocol`] and the texts the patient reads, in each language.

use coproduce_core::access::Role;
use coproduce_core::calendar::Within;
use coproduce_core::deadline::{Escalation, Step};
use coproduce_core::rescue::Protocol;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The languages every patient-facing text is given in.
pub const LANGUAGES: [&str; 4] = ["en", "es", "pt-BR", "ht"];

/// The COPD rescue pack, shipped as the default protocol.
pub const COPD_TOML: &str = include_str!("../../protocols/copd-rescue-pack.toml");

/// A text in several languages.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Texts(pub BTreeMap<String, String>);

impl Texts {
    /// The text in `lang`, else its base language, else English.
    pub fn get(&self, lang: &str) -> &str {
        let base = lang.split('-').next().unwrap_or(lang);
        self.0
            .get(lang)
            .or_else(|| self.0.get(base))
            .or_else(|| self.0.get("en"))
            .map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Zone {
    pub key: String,
    /// The zone whose text is an instruction to call emergency services, never a form.
    #[serde(default)]
    pub emergency: bool,
    pub heading: Texts,
    pub text: Texts,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Symptom {
    pub key: String,
    pub text: Texts,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Drug {
    pub key: String,
    pub days: u32,
    pub text: Texts,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    key: String,
    title: Texts,
    pack: Texts,
    zones: Vec<Zone>,
    symptoms: Vec<Symptom>,
    drugs: Vec<Drug>,
    roles: RolesFile,
    deadlines: DeadlinesFile,
    #[serde(default)]
    diabetes: DiabetesFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    eligibility: Vec<String>,
    teach_back: Vec<String>,
    dispense: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct StepFile {
    role: String,
    within: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadlinesFile {
    contact: Vec<StepFile>,
    check_in_opens: String,
    check_in: Vec<StepFile>,
    not_better: Vec<StepFile>,
    outcome: Vec<StepFile>,
    replacement: Vec<StepFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiabetesFile {
    #[serde(default)]
    glucose_days: i64,
}

/// A protocol: its rules and its texts.
#[derive(Debug, Clone)]
pub struct ProtocolDef {
    pub rules: Protocol,
    pub title: Texts,
    pub pack: Texts,
    pub zones: Vec<Zone>,
    pub symptoms: Vec<Symptom>,
    pub drugs: Vec<Drug>,
}

impl ProtocolDef {
    /// Reads a protocol file; the error says what is wrong and where.
    pub fn from_toml(text: &str) -> Result<ProtocolDef, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let roles = |what: &str, v: &[String]| -> Result<Vec<Role>, String> {
            v.iter()
                .map(|r| Role::parse(r).ok_or_else(|| format!("{what}: '{r}' is not a role")))
                .collect()
        };
        let chain = |what: &str, v: &[StepFile]| -> Result<Escalation, String> {
            let steps = v
                .iter()
                .map(|s| {
                    Ok(Step {
                        role: Role::parse(&s.role).ok_or_else(|| {
                            format!("deadlines.{what}: '{}' is not a role", s.role)
                        })?,
                        within: Within::parse(&s.within)
                            .map_err(|e| format!("deadlines.{what}: {e}"))?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Escalation::new(steps).map_err(|e| format!("deadlines.{what}: {e}"))
        };
        let emergency = f.zones.iter().filter(|z| z.emergency).count();
        if emergency != 1 {
            return Err(format!(
                "a protocol has exactly one emergency zone (it has {emergency})"
            ));
        }
        if f.drugs.is_empty() || f.symptoms.is_empty() {
            return Err("a protocol names at least one drug and one symptom".into());
        }
        let mut texts = vec![("title", &f.title), ("pack", &f.pack)];
        for z in &f.zones {
            texts.push(("zones.heading", &z.heading));
            texts.push(("zones.text", &z.text));
        }
        for s in &f.symptoms {
            texts.push(("symptoms.text", &s.text));
        }
        for d in &f.drugs {
            texts.push(("drugs.text", &d.text));
        }
        if let Some((what, _)) = texts.iter().find(|(_, t)| !t.0.contains_key("en")) {
            return Err(format!("{what}: every text needs at least English (en)"));
        }
        let rules = Protocol {
            key: f.key.clone(),
            drugs: f.drugs.iter().map(|d| d.key.clone()).collect(),
            symptoms: f.symptoms.iter().map(|s| s.key.clone()).collect(),
            eligibility_by: roles("roles.eligibility", &f.roles.eligibility)?,
            teach_back_by: roles("roles.teach_back", &f.roles.teach_back)?,
            dispense_by: roles("roles.dispense", &f.roles.dispense)?,
            contact: chain("contact", &f.deadlines.contact)?,
            check_in_opens: Within::parse(&f.deadlines.check_in_opens)
                .map_err(|e| format!("deadlines.check_in_opens: {e}"))?,
            check_in: chain("check_in", &f.deadlines.check_in)?,
            not_better: chain("not_better", &f.deadlines.not_better)?,
            outcome: chain("outcome", &f.deadlines.outcome)?,
            replacement: chain("replacement", &f.deadlines.replacement)?,
            glucose_days: f.diabetes.glucose_days,
        };
        Ok(ProtocolDef {
            rules,
            title: f.title,
            pack: f.pack,
            zones: f.zones,
            symptoms: f.symptoms,
            drugs: f.drugs,
        })
    }

    /// The shipped COPD rescue pack.
    pub fn copd() -> ProtocolDef {
        // The file is part of the binary and checked by a test, so it always reads.
        ProtocolDef::from_toml(COPD_TOML).unwrap_or_else(|e| panic!("copd-rescue-pack.toml: {e}"))
    }

    pub fn symptom(&self, key: &str) -> Option<&Symptom> {
        self.symptoms.iter().find(|s| s.key == key)
    }

    pub fn drug(&self, key: &str) -> Option<&Drug> {
        self.drugs.iter().find(|d| d.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copd_protocol_reads_and_speaks_every_language() {
        let p = ProtocolDef::copd();
        assert_eq!(p.rules.key, "copd-rescue-pack");
        assert_eq!(p.rules.drugs, ["prednisone", "antibiotic"]);
        assert_eq!(p.rules.contact.steps().len(), 3);
        assert_eq!(p.rules.contact.steps()[0].role, Role::Nurse);
        assert_eq!(p.rules.glucose_days, 5);
        let red = p.zones.iter().find(|z| z.emergency).expect("a red zone");
        assert!(red.text.get("ht").contains("911"));
        let mut all = vec![&p.title, &p.pack];
        all.extend(p.zones.iter().flat_map(|z| [&z.heading, &z.text]));
        all.extend(p.symptoms.iter().map(|s| &s.text));
        all.extend(p.drugs.iter().map(|d| &d.text));
        for t in all {
            for lang in LANGUAGES {
                assert!(t.0.contains_key(lang), "{lang} missing from {t:?}");
            }
        }
    }

    #[test]
    fn another_protocol_is_defined_without_code() {
        let hf = r#"
key = "heart-failure-weight"
title = { en = "My heart failure plan" }
pack = { en = "Diuretic top-up" }
zones = [
  { key = "green", heading = { en = "Green" }, text = { en = "Weight steady." } },
  { key = "yellow", heading = { en = "Yellow" }, text = { en = "Up 1 kg in a day or 2 kg in a week: take the extra furosemide." } },
  { key = "red", emergency = true, heading = { en = "Red" }, text = { en = "Breathless at rest: call 911." } },
]
symptoms = [{ key = "weight-gain", text = { en = "Weight up" } }, { key = "ankles", text = { en = "Swollen ankles" } }]
drugs = [{ key = "furosemide", days = 3, text = { en = "Furosemide 40 mg extra" } }]
roles = { eligibility = ["clinician"], teach_back = ["nurse"], dispense = ["pharmacist"] }
[deadlines]
contact = [{ role = "nurse", within = "4 business hours" }, { role = "clinician", within = "2 business hours" }]
check_in_opens = "24 hours"
check_in = [{ role = "nurse", within = "48 hours" }]
not_better = [{ role = "clinician", within = "1 business hours" }]
outcome = [{ role = "nurse", within = "7 days" }]
replacement = [{ role = "pharmacist", within = "3 business days" }]
"#;
        let p = ProtocolDef::from_toml(hf).expect("a heart-failure protocol");
        assert_eq!(p.rules.teach_back_by, [Role::Nurse]);
        assert_eq!(p.rules.glucose_days, 0);
        assert_eq!(p.rules.contact.steps()[0].within, Within::BusinessHours(4));
        // A broken file says what is wrong.
        let e = ProtocolDef::from_toml(&hf.replace(
            "\"nurse\", within = \"4 business hours\"",
            "\"matron\", within = \"4 business hours\"",
        ))
        .expect_err("no such role");
        assert!(e.contains("matron"), "{e}");
        let e = ProtocolDef::from_toml(&hf.replace("emergency = true, ", ""))
            .expect_err("no emergency zone");
        assert!(e.contains("emergency"), "{e}");
        let e = ProtocolDef::from_toml(&hf.replace("\"48 hours\"", "\"soon\""))
            .expect_err("a bad period");
        assert!(e.contains("check_in"), "{e}");
    }
}
