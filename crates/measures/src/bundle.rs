//! The measure bundle: the Measure, its Libraries (CQL text in base64) and ValueSet
//! expansions. From the CQL we read the `valueset`, `codesystem` and `code` declarations, so
//! that measure logic names value sets and codes as the CQL does ("Diabetes") and their
//! contents come from the bundle.

use crate::MeasureError;
use base64::Engine;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde_json::Value;

/// Value sets (by CQL name) and direct-reference codes (by CQL name), in maps with a fast
/// hash: every retrieve of every patient looks codes up here.
#[derive(Debug, Clone, Default)]
pub struct Terminology {
    /// CQL name -> system -> the codes of its expansion (looked up without allocating).
    value_sets: HashMap<String, HashMap<String, HashSet<String>>>,
    /// CQL name -> (system, code).
    codes: HashMap<String, (String, String)>,
}

impl Terminology {
    /// Whether a coding is in the value set of that CQL name. An unknown name is an error
    /// in the measure's code, so it panics in tests and answers false otherwise.
    pub fn in_value_set(&self, name: &str, system: &str, code: &str) -> bool {
        match self.value_sets.get(name) {
            Some(set) => set.get(system).is_some_and(|codes| codes.contains(code)),
            None => {
                debug_assert!(false, "no value set named {name}");
                false
            }
        }
    }

    /// The code of that CQL name.
    pub fn code(&self, name: &str) -> Option<(&str, &str)> {
        self.codes.get(name).map(|(s, c)| (s.as_str(), c.as_str()))
    }

    pub fn code_names(&self) -> impl Iterator<Item = &str> {
        self.codes.keys().map(String::as_str)
    }
}

/// A measure bundle, read.
#[derive(Debug, Clone)]
pub struct MeasureBundle {
    pub measure_url: String,
    pub terminology: Terminology,
    /// The measurement period the Measure declares (effectivePeriod), as dates.
    pub effective_period: Option<(time::Date, time::Date)>,
}

fn decl_re() -> regex::Regex {
    // valueset "Name": 'url'   codesystem "Name": 'url'   code "Name": 'code' from "System"
    regex::Regex::new(
        r#"(?m)^\s*(valueset|codesystem|code)\s+"([^"]+)"\s*:\s*'([^']+)'(?:\s+from\s+(?:\w+\.)?(?:"([^"]+)"|(\w+)))?"#,
    )
    .expect("a valid pattern")
}

fn date(v: &Value) -> Option<time::Date> {
    let s = v.as_str()?;
    time::Date::parse(
        s.get(..10)?,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

impl MeasureBundle {
    pub fn from_json(bundle: &Value) -> Result<Self, MeasureError> {
        let entries = bundle["entry"]
            .as_array()
            .ok_or_else(|| MeasureError::Bundle("no entries".into()))?;
        let resources = entries.iter().map(|e| &e["resource"]);
        let mut measure_url = String::new();
        let mut effective_period = None;
        let mut expansions: HashMap<String, HashMap<String, HashSet<String>>> = HashMap::default();
        let mut cql = Vec::new();
        for r in resources {
            match r["resourceType"].as_str() {
                Some("Measure") => {
                    measure_url = r["url"].as_str().unwrap_or_default().to_string();
                    effective_period = date(&r["effectivePeriod"]["start"])
                        .zip(date(&r["effectivePeriod"]["end"]));
                }
                Some("Library") => {
                    for c in r["content"].as_array().into_iter().flatten() {
                        if c["contentType"] == "text/cql"
                            && let Some(data) = c["data"].as_str()
                        {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(data)
                                .map_err(|e| MeasureError::Bundle(format!("CQL: {e}")))?;
                            cql.push(String::from_utf8_lossy(&bytes).into_owned());
                        }
                    }
                }
                Some("ValueSet") => {
                    let url = r["url"].as_str().unwrap_or_default().to_string();
                    let set = expansions.entry(url).or_default();
                    let mut add = |items: &Value, system: Option<&str>| {
                        for c in items.as_array().into_iter().flatten() {
                            if let (Some(s), Some(code)) =
                                (c["system"].as_str().or(system), c["code"].as_str())
                            {
                                set.entry(s.to_string())
                                    .or_default()
                                    .insert(code.to_string());
                            }
                        }
                    };
                    add(&r["expansion"]["contains"], None);
                    // A value set without an expansion lists its codes in compose.
                    for inc in r["compose"]["include"].as_array().into_iter().flatten() {
                        add(&inc["concept"], inc["system"].as_str());
                    }
                }
                _ => {}
            }
        }
        let re = decl_re();
        let mut systems = HashMap::default();
        let mut terminology = Terminology::default();
        let mut pending_codes = Vec::new();
        for text in &cql {
            for cap in re.captures_iter(text) {
                let (kind, name, value) = (&cap[1], cap[2].to_string(), cap[3].to_string());
                match kind {
                    "valueset" => {
                        let set = expansions.get(&value).cloned().ok_or_else(|| {
                            MeasureError::Bundle(format!("no expansion of {value} ({name})"))
                        })?;
                        terminology.value_sets.insert(name, set);
                    }
                    "codesystem" => {
                        systems.insert(name, value);
                    }
                    _ => pending_codes.push((
                        name,
                        value,
                        cap.get(4).or(cap.get(5)).map(|m| m.as_str().to_string()),
                    )),
                }
            }
        }
        for (name, code, system) in pending_codes {
            let system = system
                .and_then(|s| systems.get(&s).cloned())
                .ok_or_else(|| {
                    MeasureError::Bundle(format!("the code {name} has no known system"))
                })?;
            terminology.codes.insert(name, (system, code));
        }
        Ok(MeasureBundle {
            measure_url,
            terminology,
            effective_period,
        })
    }
}
