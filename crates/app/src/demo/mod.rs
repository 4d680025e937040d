//! The demo population: a small, deterministic synthetic panel (patients with diabetes and
//! COPD, their conditions, HbA1c readings, blood pressure and encounters) that
//! `coproduce demo` loads into a fresh database. The workflow issues grow it.

use crate::caller::Caller;
use crate::care::{Care, NewActivity, NewReading};
use crate::error::CareError;
use coproduce_core::access::{Actor, Role, Who};
use coproduce_core::care::plan::{Cadence, GoalAnswer, Owner, Schedule, Setting};
use coproduce_core::care::readings::{HbA1cTarget, Measure};
use serde_json::{Value, json};
use time::Duration;

mod social;
pub use social::DIRECTORY_CSV;
mod speakup;

/// A small deterministic generator (SplitMix64): the same seed gives the same population.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const GIVEN_F: &[&str] = &[
    "Ana", "Maria", "Rose", "Keisha", "Linh", "Fatima", "Grace", "Lucia",
];
const GIVEN_M: &[&str] = &[
    "Jean", "Carlos", "Tomas", "Darnell", "Minh", "Omar", "Peter", "Joao",
];
const FAMILY: &[&str] = &[
    "Silva", "Pierre", "Garcia", "Johnson", "Nguyen", "Haddad", "Okafor", "Santos",
];
const LANGS: &[&str] = &["en", "es", "pt-BR", "ht"];

/// `n` patients with their records, as FHIR resources with stable ids (`demo-p1`...), dated
/// in the twelve months before `today` (`YYYY-MM-DD`).
pub fn population(n: usize, seed: u64, today: time::Date) -> Vec<Value> {
    let today_year = today.year();
    // A day `back` days before today, as FHIR writes a date.
    let day = |back: u64| (today - Duration::days(i64::try_from(back).unwrap_or(0))).to_string();
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    out.push(
        json!({"resourceType": "Organization", "id": "demo-clinic", "active": true,
        "name": "Riverside Community Health Center"}),
    );
    for i in 1..=n {
        let female = rng.below(2) == 0 || i == 1;
        let mut given = if female { GIVEN_F } else { GIVEN_M }[rng.below(8) as usize];
        let mut family = FAMILY[rng.below(8) as usize];
        if i == 1 {
            // The demo's story is Ana's: her account is `ana`, her daughter's `clara`.
            (given, family) = ("Ana", "Silva");
        }
        let lang = LANGS[rng.below(4) as usize];
        let birth_year = today_year - 35 - rng.below(45) as i32;
        let pid = format!("demo-p{i}");
        out.push(json!({
            "resourceType": "Patient", "id": pid, "active": true,
            "identifier": [{"system": "urn:coproduce:demo:mrn", "value": format!("MRN{:05}", i)}],
            "name": [{"family": family, "given": [given]}],
            "gender": if female { "female" } else { "male" },
            "birthDate": format!("{birth_year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)),
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": lang}]}, "preferred": true}],
            "managingOrganization": {"reference": "Organization/demo-clinic"},
        }));
        // Ana (demo-p1) has diabetes: the demo's story is hers.
        let diabetic = rng.unit() < 0.6 || i == 1;
        // demo-p1 to demo-p8 have COPD, so the rescue pack has a patient in every state (Ana,
        // demo-p1, with diabetes too, has a pack ready to start).
        let copd = rng.unit() < 0.3 || (1..=8).contains(&i);
        if diabetic {
            out.push(condition(
                &pid,
                "diabetes",
                "44054006",
                "Type 2 diabetes mellitus",
                "E11.9",
            ));
            let mut a1c = 6.5 + rng.unit() * 4.0;
            for q in 0..4 {
                a1c = (a1c - 0.3 + rng.unit() * 0.5).clamp(5.0, 13.0);
                // One a quarter over the last year.
                let date = day(365 - 91 * q - rng.below(20));
                out.push(json!({
                    "resourceType": "Observation", "id": format!("{pid}-a1c-{q}"), "status": "final",
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
                    "subject": {"reference": format!("Patient/{pid}")},
                    "effectiveDateTime": date,
                    "valueQuantity": {"value": (a1c * 10.0).round() / 10.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
                }));
            }
        }
        if copd {
            out.push(condition(
                &pid,
                "copd",
                "13645005",
                "Chronic obstructive pulmonary disease",
                "J44.9",
            ));
        }
        // Check-ups for everyone; for a patient with COPD up to three flares a year that
        // bring them to the emergency department or into hospital.
        let visits = 1 + rng.below(3);
        let flares = if copd { rng.below(4) } else { 0 };
        for v in 0..visits + flares {
            // Any day of the last year, so that the analyst's twelve months all have visits.
            let back = 1 + rng.below(364);
            let date = day(back);
            let acute = v >= visits;
            let admitted = acute && rng.unit() < 0.4;
            let (class, type_code, type_text) = match (acute, admitted) {
                (true, true) => ("IMP", "32485007", "Hospital admission"),
                (true, false) => ("EMER", "50849002", "Emergency room admission"),
                _ => ("AMB", "185349003", "Encounter for check up"),
            };
            // A stay lasts three days; a visit forty minutes.
            let end = if admitted {
                format!("{}T11:00:00Z", day(back.saturating_sub(3)))
            } else {
                format!("{date}T09:40:00Z")
            };
            let mut encounter = json!({
                "resourceType": "Encounter", "id": format!("{pid}-enc-{v}"), "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
                "type": [{"coding": [{"system": "http://snomed.info/sct", "code": type_code, "display": type_text}]}],
                "subject": {"reference": format!("Patient/{pid}")},
                "period": {"start": format!("{date}T09:00:00Z"), "end": end},
                "serviceProvider": {"reference": "Organization/demo-clinic"},
            });
            // A flare of COPD is why the patient came in acutely.
            if acute {
                encounter["reasonCode"] = json!([{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J44.1", "display": "COPD with (acute) exacerbation"}]}]);
            }
            out.push(encounter);
            if acute {
                continue;
            }
            let sys = 112 + rng.below(45);
            let dia = 68 + rng.below(25);
            out.push(json!({
                "resourceType": "Observation", "id": format!("{pid}-bp-{v}"), "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
                "subject": {"reference": format!("Patient/{pid}")},
                "encounter": {"reference": format!("Encounter/{pid}-enc-{v}")},
                "effectiveDateTime": format!("{date}T09:10:00Z"),
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                     "valueQuantity": {"value": sys, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                     "valueQuantity": {"value": dia, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                ],
            }));
        }
    }
    out
}

fn condition(pid: &str, key: &str, snomed: &str, display: &str, icd10: &str) -> Value {
    json!({
        "resourceType": "Condition", "id": format!("{pid}-{key}"),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": {"coding": [
            {"system": "http://snomed.info/sct", "code": snomed, "display": display},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd10}]},
        "subject": {"reference": format!("Patient/{pid}")},
    })
}

/// The demo's care team and family: practitioners, a care team for each of the first
/// `team_size` patients, and demo-p1's daughter with a full grant. Returns the resources and
/// the accounts to create (user name, role, the FHIR resource that is them).
pub fn people(team_size: usize) -> (Vec<Value>, Vec<(&'static str, &'static str, &'static str)>) {
    let staff = [
        ("demo-dr-okafor", "Okafor", "Ngozi", "clinician"),
        ("demo-rn-lee", "Lee", "Sam", "nurse"),
        ("demo-rph-ali", "Ali", "Yusuf", "pharmacist"),
        ("demo-chw-rosa", "Mendes", "Rosa", "community-health-worker"),
        ("demo-sw-ben", "Baptiste", "Ben", "social-worker"),
        ("demo-rr-kim", "Kim", "Jae", "rapid-response"),
        ("demo-lead-park", "Park", "Min", "clinic-lead"),
    ];
    let mut out = Vec::new();
    for (id, family, given, _) in staff {
        out.push(
            json!({"resourceType": "Practitioner", "id": id, "active": true,
            "name": [{"family": family, "given": [given]}]}),
        );
    }
    for i in 1..=team_size {
        let participants: Vec<Value> = staff[..5]
            .iter()
            .map(|(id, _, _, role)| json!({"role": [{"text": role}], "member": {"reference": format!("Practitioner/{id}")}}))
            .collect();
        out.push(
            json!({"resourceType": "CareTeam", "id": format!("demo-team-p{i}"), "status": "active",
            "name": "Riverside primary care team",
            "subject": {"reference": format!("Patient/demo-p{i}")},
            "participant": participants,
            "managingOrganization": [{"reference": "Organization/demo-clinic"}]}),
        );
    }
    out.push(json!({"resourceType": "RelatedPerson", "id": "demo-rp-1", "active": true,
        "patient": {"reference": "Patient/demo-p1"},
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "DAU", "display": "daughter"}]}],
        "name": [{"family": "Silva", "given": ["Clara"]}]}));
    let parts: Vec<Value> = [
        "readings",
        "plan",
        "messages",
        "concerns",
        "medicines",
        "record",
    ]
    .iter()
    .map(|p| json!({"coding": [{"system": crate::accounts::GRANT_PART_SYSTEM, "code": p}]}))
    .collect();
    out.push(json!({"resourceType": "Consent", "id": "demo-grant-rp-1", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/demo-p1"},
        "policyRule": {"text": "Family access granted by the patient in coproduce"},
        "provision": {"type": "permit",
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "DAU"}]},
                       "reference": {"reference": "RelatedPerson/demo-rp-1"}}],
            "code": parts}}));
    let accounts = vec![
        ("ana", "patient", "Patient/demo-p1"),
        ("clara", "family", "RelatedPerson/demo-rp-1"),
        ("dr.okafor", "clinician", "Practitioner/demo-dr-okafor"),
        ("nurse.lee", "nurse", "Practitioner/demo-rn-lee"),
        ("pharm.ali", "pharmacist", "Practitioner/demo-rph-ali"),
        (
            "chw.rosa",
            "community-health-worker",
            "Practitioner/demo-chw-rosa",
        ),
        ("sw.ben", "social-worker", "Practitioner/demo-sw-ben"),
        ("rr.kim", "rapid-response", "Practitioner/demo-rr-kim"),
        ("lead.park", "clinic-lead", "Practitioner/demo-lead-park"),
        ("quality.ida", "quality-analyst", ""),
        ("admin", "admin", ""),
        ("pantry", "partner", "Organization/eastside-pantry"),
    ];
    (out, accounts)
}

/// The patients of a population who have diabetes (their Condition ids end in `-diabetes`).
pub fn with_diabetes(population: &[Value]) -> Vec<String> {
    with_condition(population, "-diabetes")
}

/// The patients of a population who have COPD.
pub fn with_copd(population: &[Value]) -> Vec<String> {
    with_condition(population, "-copd")
}

fn with_condition(population: &[Value], suffix: &str) -> Vec<String> {
    population
        .iter()
        .filter(|r| r["resourceType"] == "Condition")
        .filter_map(|r| r["id"].as_str()?.strip_suffix(suffix).map(str::to_string))
        .collect()
}

/// A patient acting for themselves, for demo patients without an account of their own.
fn as_patient(pid: &str) -> Caller {
    Caller {
        actor: Actor::session(Who::Patient {
            patient: pid.to_string(),
        }),
        label: format!("demo:{pid}"),
        fhir_ref: Some(format!("Patient/{pid}")),
        user_id: None,
    }
}

/// What the demo's shared care plans hold, made through the same use-cases as the app: a
/// year of readings entered by each patient with diabetes in the team's panel (older ones
/// reviewed by the clinician, the last fortnight's waiting), an agreed HbA1c goal, and for
/// demo-p1 (Ana) goals in every state, activities on both sides and a reading her daughter
/// entered. `team` and `family` act as the clinician and demo-p1's daughter.
pub async fn care_story(
    care: &Care,
    patients: &[String],
    team: &Caller,
    family: &Caller,
    seed: u64,
) -> Result<usize, CareError> {
    let mut rng = Rng::new(seed);
    let now = care.now();
    let mut written = 0;
    for pid in patients {
        let me = as_patient(pid);
        let mut glucose = 120.0 + rng.unit() * 80.0;
        let mut weight = 70.0 + rng.unit() * 40.0;
        for week in (0..52).rev() {
            let at = now
                - Duration::weeks(week)
                - Duration::hours(i64::try_from(rng.below(48)).unwrap_or(0));
            glucose = (glucose + rng.unit() * 30.0 - 16.0).clamp(70.0, 320.0);
            let mut entries = vec![NewReading {
                measure: Measure::Glucose,
                values: vec![glucose.round()],
                unit: "mg/dL".into(),
                at,
            }];
            if week % 4 == 0 {
                weight = (weight + rng.unit() * 1.6 - 0.9).clamp(45.0, 180.0);
                entries.push(NewReading {
                    measure: Measure::Weight,
                    values: vec![(weight * 10.0).round() / 10.0],
                    unit: "kg".into(),
                    at,
                });
                let sys = 118.0 + rng.below(40) as f64;
                entries.push(NewReading {
                    measure: Measure::BloodPressure,
                    values: vec![sys, sys - 40.0 + rng.below(15) as f64],
                    unit: String::new(),
                    at,
                });
            }
            for r in entries {
                let reading = care.record_reading(&me, pid, &r).await?;
                written += 1;
                if week >= 2 {
                    let comment = if rng.unit() < 0.1 {
                        "Thanks, this looks steady. Keep going."
                    } else {
                        ""
                    };
                    care.review_reading(team, pid, &reading.id, comment).await?;
                }
            }
        }
        let target =
            [HbA1cTarget::Usual, HbA1cTarget::Relaxed, HbA1cTarget::Tight][rng.below(3) as usize];
        let g = care
            .propose_goal(team, pid, "Keep my HbA1c where we agreed", Some(target))
            .await?;
        care.answer_goal(&me, pid, &g.id, GoalAnswer::Agree, None)
            .await?;
        care.refresh_hba1c_task(pid).await?;
    }
    if let Some(ana) = patients.iter().find(|p| *p == "demo-p1") {
        let me = as_patient(ana);
        care.propose_goal(&me, ana, "Walk to the market three times a week", None)
            .await?;
        care.propose_goal(team, ana, "Check my feet every evening", None)
            .await?;
        let g = care
            .propose_goal(team, ana, "Join the Tuesday diabetes class", None)
            .await?;
        care.answer_goal(
            &me,
            ana,
            &g.id,
            GoalAnswer::Decline("I work on Tuesdays; an evening class would suit me".into()),
            None,
        )
        .await?;
        let g = care
            .propose_goal(&me, ana, "Cook at home five days a week", None)
            .await?;
        care.answer_goal(
            team,
            ana,
            &g.id,
            GoalAnswer::SuggestChange("Cook at home three days a week to start".into()),
            None,
        )
        .await?;
        let activities = [
            (
                "Check blood sugar before breakfast",
                Owner::Patient,
                Setting::SelfCare,
                Schedule::Every(Cadence::Days(1)),
            ),
            (
                "Go with Mum to the eye exam",
                Owner::Family,
                Setting::Outpatient,
                Schedule::By(now + Duration::days(20)),
            ),
            (
                "Call Ana about her foot check",
                Owner::Team(Role::Nurse),
                Setting::Outpatient,
                Schedule::By(now - Duration::days(3)),
            ),
            (
                "Review Ana's medicines with her",
                Owner::Team(Role::Pharmacist),
                Setting::Outpatient,
                Schedule::By(now + Duration::days(10)),
            ),
        ];
        for (text, owner, setting, schedule) in activities {
            care.add_activity(
                team,
                ana,
                &NewActivity {
                    text: text.into(),
                    owner,
                    setting,
                    schedule,
                },
            )
            .await?;
        }
        care.record_reading(
            family,
            ana,
            &NewReading {
                measure: Measure::Glucose,
                values: vec![212.0],
                unit: "mg/dL".into(),
                at: now - Duration::hours(3),
            },
        )
        .await?;
        written += 1;
    }
    Ok(written)
}

/// A demo team member with `patients` in their panel.
fn as_team(role: Role, practitioner: &str, patients: &[String]) -> Caller {
    Caller {
        actor: Actor::session(Who::TeamMember {
            role,
            panel: patients.iter().cloned().collect(),
            break_glass: Vec::new(),
        }),
        label: format!("demo:{practitioner}"),
        fhir_ref: Some(format!("Practitioner/{practitioner}")),
        user_id: None,
    }
}

/// Rescue packs in every state for the first eight of `patients` (patients with COPD in the
/// team's panel), made through the same use-case as the app, with each step at a time in the
/// past before `now`: ready; teach-back still to do; started an hour ago (contact due);
/// started four days ago with the contact now overdue; contacted and checked in "worse" (a
/// same-day follow-up open); recovered with a replacement due; replaced by a new pack; and a
/// pack whose expiry has passed unused (the watcher turns it into a team task). Returns how
/// many packs were made.
pub async fn rescue_story(
    store: &coproduce_store::Store,
    patients: &[String],
    now: time::OffsetDateTime,
) -> Result<usize, CareError> {
    use crate::notify::Notifier;
    use crate::rescue::Rescue;
    use crate::rescue::protocol::ProtocolDef;
    use coproduce_core::Clock;
    use coproduce_core::calendar::BusinessCalendar;
    use coproduce_core::rescue::{CheckIn, Event, Item, Outcome};
    use std::sync::Arc;
    let clock = Arc::new(coproduce_core::FakeClock::at(now - Duration::days(400)));
    let api = crate::FhirApi::new(store.clone(), clock.clone());
    let notifier = Notifier::new(api.clone(), clock.clone(), false);
    let rescue = Rescue::new(
        api,
        clock.clone(),
        ProtocolDef::copd(),
        BusinessCalendar::default(),
        notifier,
    );
    let dr = as_team(Role::Clinician, "demo-dr-okafor", patients);
    let rn = as_team(Role::Nurse, "demo-rn-lee", patients);
    let rph = as_team(Role::Pharmacist, "demo-rph-ali", patients);
    let items = |expires: time::Date| -> Vec<Item> {
        ["prednisone", "antibiotic"]
            .map(|d| Item {
                drug: d.into(),
                expires,
            })
            .to_vec()
    };
    let started = || Event::Started {
        symptoms: vec!["more-breathless".into(), "sputum-colour".into()],
        since: clock.now() - Duration::hours(30),
        taken: vec!["prednisone".into(), "antibiotic".into()],
    };
    let mut made = 0;
    for (k, pid) in patients.iter().take(8).enumerate() {
        let me = as_patient(pid);
        // Every pack was set up some months ago (the expired one a year and more ago).
        let set_up = if k == 7 {
            now - Duration::days(400)
        } else {
            now - Duration::days(60)
        };
        clock.set(set_up);
        let pack = rescue
            .record(
                &dr,
                pid,
                None,
                Event::Eligible {
                    reason: "Two COPD exacerbations in the past year, one admitted".into(),
                },
            )
            .await?;
        made += 1;
        if k == 1 {
            continue; // Teach-back still to do.
        }
        clock.set(set_up + Duration::days(2));
        rescue
            .record(&rph, pid, Some(&pack), Event::TaughtBack)
            .await?;
        let expires = if k == 7 {
            (now - Duration::days(30)).date()
        } else {
            (now + Duration::days(365)).date()
        };
        rescue
            .record(
                &rph,
                pid,
                Some(&pack),
                Event::Dispensed {
                    items: items(expires),
                },
            )
            .await?;
        let start_at = match k {
            2 => now - Duration::hours(1),
            3 => now - Duration::days(4),
            4 => now - Duration::days(3),
            5 | 6 => now - Duration::days(20),
            _ => continue, // Ready (k = 0) or expired unused (k = 7).
        };
        clock.set(start_at);
        rescue.record(&me, pid, Some(&pack), started()).await?;
        if k == 2 || k == 3 {
            continue; // Contact due, or overdue.
        }
        clock.set(start_at + Duration::hours(5));
        rescue
            .record(
                &rn,
                pid,
                Some(&pack),
                Event::Contacted {
                    note: "Reached by phone; taking both medicines.".into(),
                },
            )
            .await?;
        clock.set(start_at + Duration::hours(50));
        let answer = if k == 4 {
            CheckIn::Worse
        } else {
            CheckIn::Better
        };
        rescue
            .record(&me, pid, Some(&pack), Event::CheckedIn { answer })
            .await?;
        if k == 4 {
            continue; // Not better: the same-day follow-up is open.
        }
        clock.set(start_at + Duration::days(14));
        rescue
            .record(
                &rn,
                pid,
                Some(&pack),
                Event::Outcome {
                    outcome: Outcome::RecoveredAtHome,
                },
            )
            .await?;
        if k == 6 {
            clock.set(start_at + Duration::days(15));
            rescue
                .record(
                    &rph,
                    pid,
                    Some(&pack),
                    Event::Replaced {
                        items: items((now + Duration::days(400)).date()),
                    },
                )
                .await?;
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_population_is_valid_fhir_and_deterministic() {
        let today = time::macros::date!(2026 - 11 - 28);
        let a = population(30, 7, today);
        assert_eq!(a, population(30, 7, today));
        assert_eq!(
            a.iter().filter(|r| r["resourceType"] == "Patient").count(),
            30
        );
        for r in a.iter().chain(&people(10).0) {
            coproduce_fhir::validate::validate_resource(r).unwrap_or_else(|e| panic!("{e}: {r}"));
        }
    }
}

/// What [`load`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub resources: usize,
    pub care_plans: usize,
    pub readings: usize,
    pub packs: usize,
    pub concerns: usize,
    /// The needs Ana's screening found.
    pub social_needs: usize,
    /// The drugs of the site's formulary.
    pub formulary: usize,
}

/// The demo's formulary: modelled from the shipped NADAC week by the default pricing rules,
/// as MedicationKnowledge.
fn formulary() -> Result<Vec<serde_json::Value>, CareError> {
    let f = crate::prescribing::model::demo().map_err(|e| {
        CareError::App(crate::error::AppError::Internal(format!(
            "the demo formulary: {e}"
        )))
    })?;
    Ok(f.drugs()
        .iter()
        .map(crate::prescribing::formulary::resource)
        .collect())
}

/// Loads the demo into an empty store: 40 synthetic patients, a care team for the first 20
/// with an account for each role, Ana's daughter with a grant, the shared care plans of the
/// panel's patients with diabetes and rescue packs for those with COPD, made through the
/// app's own use-cases as the people would.
pub async fn load(
    store: &coproduce_store::Store,
    clock: std::sync::Arc<dyn coproduce_core::Clock>,
) -> Result<Loaded, CareError> {
    use crate::accounts::{Accounts, NewUser};
    use crate::error::AppError;
    let mut resources = population(40, 2026, clock.now().date());
    // The care team's panel is the first 20 patients.
    let in_panel = |p: &String| {
        p.strip_prefix("demo-p")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n <= 20)
    };
    let panel: Vec<String> = with_diabetes(&resources)
        .into_iter()
        .filter(in_panel)
        .collect();
    let copd: Vec<String> = with_copd(&resources).into_iter().filter(in_panel).collect();
    let (people, accounts) = people(20);
    resources.extend(people);
    resources.extend(speakup::units());
    resources.extend(social::directory()?);
    let drugs = formulary()?;
    let formulary = drugs.len();
    resources.extend(drugs);
    let n = resources.len();
    let mut importer = crate::Importer::new(store.clone(), clock.clone(), "cli:demo");
    for (i, r) in resources.into_iter().enumerate() {
        importer
            .add(coproduce_fhir::stream::SourceItem::new(
                format!("demo#{i}"),
                Ok(r),
            ))
            .await?;
    }
    let summary = importer.finish().await?;
    if !summary.rejected.is_empty() {
        return Err(CareError::App(AppError::Internal(format!(
            "rejected: {:?}",
            summary.rejected
        ))));
    }
    let accts = Accounts::new(store.clone(), clock.clone());
    for (username, role, link) in accounts {
        let role = Role::parse(role)
            .ok_or_else(|| CareError::App(AppError::Internal(format!("the role {role}"))))?;
        accts
            .add_user(NewUser {
                username: username.to_string(),
                roles: vec![role],
                fhir_ref: (!link.is_empty()).then(|| link.to_string()),
                password: None,
            })
            .await?;
    }
    let users = accts.users().await?;
    let caller = |name: &str| {
        let user = users
            .iter()
            .find(|u| u.username == name)
            .ok_or_else(|| CareError::App(AppError::Internal(format!("the account {name}"))))?;
        Ok::<_, CareError>(accts.caller_for_user(user))
    };
    let team = caller("dr.okafor")?.await?;
    let family = caller("clara")?.await?;
    let care = Care::new(
        crate::FhirApi::new(store.clone(), clock.clone()),
        clock.clone(),
    );
    let readings = care_story(&care, &panel, &team, &family, 2026).await?;
    // Rescue packs for patients with COPD in the team's panel, Ana's (demo-p1) ready to start.
    let packs = rescue_story(store, &copd, clock.now()).await?;
    // Concerns on the two units, in every state.
    let ana = caller("ana")?.await?;
    let nurse = caller("nurse.lee")?.await?;
    let lead = caller("lead.park")?.await?;
    let concerns = speakup::story(store, &ana, &family, &nurse, &lead, clock.now()).await?;
    // Ana's screening and her word on each need it found.
    let social = crate::social::Social::new(
        crate::FhirApi::new(store.clone(), clock.clone()),
        clock.clone(),
        Default::default(),
        Default::default(),
    );
    let chw = caller("chw.rosa")?.await?;
    let social_needs = social::story(&social, &ana, &chw, "demo-p1").await?;
    Ok(Loaded {
        resources: n,
        care_plans: panel.len(),
        readings,
        packs,
        concerns,
        social_needs,
        formulary,
    })
}
