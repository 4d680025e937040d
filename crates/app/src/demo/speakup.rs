//! The demo's Speak Up: two units (the 4 West ward and the Riverside clinic), their staff
//! placed on them, and concerns in every state raised and worked on through the same
//! use-cases as the pages, each step at a time in the past: an urgent concern nobody has
//! acknowledged (overdue), one just received, one being looked into, one with action taken,
//! one answered and waiting for the reporter's word, and closed ones where the reporter felt
//! heard, partly (with staff named by the manager), or not at all and came back; and a
//! compliment the practice manager answered.

use crate::caller::Caller;
use crate::error::CareError;
use crate::notify::Notifier;
use crate::speakup::{Follower, NewConcern, Reporter, SpeakUp, Unit};
use coproduce_core::access::Role;
use coproduce_core::speakup::{Heard, Place, Rules, Step};
use serde_json::{Value, json};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The units and who works on them: Locations and PractitionerRoles.
pub fn units() -> Vec<Value> {
    let mut out = vec![
        Unit::location("4-west", "4 West", Place::Inpatient, None),
        Unit::location(
            "riverside-clinic",
            "Riverside clinic",
            Place::Outpatient,
            None,
        ),
    ];
    for (id, who, role, units) in [
        (
            "demo-pr-rr-kim",
            "demo-rr-kim",
            "rapid-response",
            &["4-west"][..],
        ),
        (
            "demo-pr-rn-lee",
            "demo-rn-lee",
            "nurse",
            &["4-west", "riverside-clinic"][..],
        ),
        (
            "demo-pr-lead-park",
            "demo-lead-park",
            "clinic-lead",
            &["4-west", "riverside-clinic"][..],
        ),
    ] {
        let locations: Vec<Value> = units
            .iter()
            .map(|u| json!({"reference": format!("Location/{u}")}))
            .collect();
        out.push(
            json!({"resourceType": "PractitionerRole", "id": id, "active": true,
            "practitioner": {"reference": format!("Practitioner/{who}")},
            "code": [{"coding": [{"system": crate::vocabulary::ROLES, "code": role}]}],
            "location": locations}),
        );
    }
    out
}

/// Who raised a scene's concern.
#[derive(Clone, Copy)]
enum From {
    Ana,
    Clara,
    /// A unit's open form on this device, without a name.
    Device(&'static str),
}

/// What happens to a concern after it is raised.
enum Then {
    Ack(Role),
    Looking(Role),
    Action(Role, &'static str),
    Answer(Role, &'static str),
    /// The manager names staff to the reporter and links this safety event.
    Release(&'static str),
    Said(Heard, &'static str),
}

/// One concern's story: when, from whom, where, what; then its steps, each this long ago.
struct Scene {
    ago: Duration,
    from: From,
    unit: &'static str,
    category: &'static str,
    what: &'static str,
    room: &'static str,
    language: &'static str,
    urgent: bool,
    feedback: bool,
    /// Raised from the answer of this earlier scene ("raise another concern").
    after: Option<usize>,
    then: Vec<(Duration, Then)>,
}

fn scenes() -> Vec<Scene> {
    use Then::*;
    let (d, h, m) = (Duration::days, Duration::hours, Duration::minutes);
    let (nurse, lead) = (Role::Nurse, Role::ClinicLead);
    let scene = |ago, from, unit, category, what, language| Scene {
        ago,
        from,
        unit,
        category,
        what,
        room: "",
        language,
        urgent: false,
        feedback: false,
        after: None,
        then: Vec::new(),
    };
    vec![
        // Three weeks ago Ana was not told her results; she did not feel heard.
        Scene {
            then: vec![
                (d(20), Ack(nurse)),
                (
                    d(16),
                    Answer(
                        lead,
                        "Nou regrèt sa. Rezilta ou yo te nòmal; nou chanje fason nou rele moun yo.",
                    ),
                ),
                (d(15), Said(Heard::No, "It took too long.")),
            ],
            ..scene(
                d(21),
                From::Ana,
                "riverside-clinic",
                "communication",
                "Nobody called me with my blood test results.",
                "ht",
            )
        },
        // Two weeks ago on 4 West, from the bedside: closed, felt heard.
        Scene {
            room: "12",
            then: vec![
                (d(14) - h(1), Ack(nurse)),
                (d(14) - h(1), Action(nurse, "Housekeeping cleaned the room")),
                (
                    d(14) - h(1),
                    Answer(
                        nurse,
                        "Gracias por avisarnos. Limpiaron el baño y revisamos el horario de limpieza.",
                    ),
                ),
                (d(13), Said(Heard::Yes, "")),
            ],
            ..scene(
                d(14),
                From::Device("demo-bedside-4w"),
                "4-west",
                "hygiene",
                "The bathroom in room 12 has not been cleaned since yesterday.",
                "es",
            )
        },
        // Ten days ago, Clara: closed, partly heard; the manager named the nurse.
        Scene {
            room: "8",
            then: vec![
                (d(10) - h(2), Ack(nurse)),
                (d(10) - h(2), Looking(nurse)),
                (
                    d(8),
                    Answer(
                        lead,
                        "Thank you. Only one dose was given; the second entry was a charting error, now corrected. We have changed how doses are recorded.",
                    ),
                ),
                (d(8), Release("SE-2026-0412")),
                (
                    d(7),
                    Said(Heard::Partly, "I still want to talk to the doctor."),
                ),
            ],
            ..scene(
                d(10),
                From::Clara,
                "4-west",
                "medication",
                "My mother was given her evening insulin twice.",
                "en",
            )
        },
        // Last week, Ana's compliment: answered by the practice manager, and she felt heard.
        Scene {
            feedback: true,
            then: vec![
                (d(5), Ack(lead)),
                (
                    d(5),
                    Answer(
                        lead,
                        "Mèsi anpil. Nou pataje mesaj ou a ak Rosa ak tout ekip la.",
                    ),
                ),
                (d(4), Said(Heard::Yes, "")),
            ],
            ..scene(
                d(6),
                From::Ana,
                "riverside-clinic",
                "compliment",
                "Rosa, the community health worker, helped me find a pharmacy I can reach by bus.",
                "ht",
            )
        },
        // Two days ago, Ana again, after the first: answered, waiting for her word.
        Scene {
            after: Some(0),
            then: vec![
                (d(2) - h(3), Ack(nurse)),
                (
                    d(1),
                    Answer(
                        lead,
                        "Nou regrèt sa. Nou pale ak ekip resepsyon an sou sèvis entèprèt la.",
                    ),
                ),
            ],
            ..scene(
                d(2),
                From::Ana,
                "riverside-clinic",
                "respect",
                "The front desk spoke to me in English after I asked for an interpreter.",
                "ht",
            )
        },
        // Yesterday at the clinic: action taken, the answer still to come.
        Scene {
            then: vec![
                (h(20), Ack(nurse)),
                (
                    h(20),
                    Action(nurse, "Reminded the lab team of the two-identifier check"),
                ),
            ],
            ..scene(
                d(1),
                From::Device("demo-clinic-waiting-room"),
                "riverside-clinic",
                "identity",
                "Nobody checked my name before the blood test.",
                "pt-BR",
            )
        },
        // This morning on 4 West: being looked into.
        Scene {
            room: "8",
            then: vec![(h(4), Ack(nurse)), (h(4), Looking(nurse))],
            ..scene(
                h(5),
                From::Clara,
                "4-west",
                "communication",
                "Nobody has told us when my mother will be discharged.",
                "en",
            )
        },
        // An hour ago: received, not yet acknowledged (due within 4 hours).
        Scene {
            room: "15",
            ..scene(
                h(1),
                From::Device("demo-bedside-4w"),
                "4-west",
                "other",
                "The call button in room 15 does not work.",
                "en",
            )
        },
        // Forty minutes ago: urgent, and nobody has acknowledged it.
        Scene {
            room: "12",
            urgent: true,
            ..scene(
                m(40),
                From::Device("demo-bedside-4w"),
                "4-west",
                "condition-worse",
                "Papa m ap respire mal epi pèsonn pa vini.",
                "ht",
            )
        },
    ]
}

/// Concerns in every state on the two units, played through the same use-cases as the pages
/// with each step at its time; returns how many were raised.
pub async fn story(
    store: &coproduce_store::Store,
    ana: &Caller,
    clara: &Caller,
    nurse: &Caller,
    lead: &Caller,
    now: OffsetDateTime,
) -> Result<usize, CareError> {
    use coproduce_core::Clock;
    let clock = Arc::new(coproduce_core::FakeClock::at(now - Duration::days(30)));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let api = crate::FhirApi::new(store.clone(), dyn_clock.clone());
    let speakup = SpeakUp::new(
        api.clone(),
        dyn_clock.clone(),
        Rules::default(),
        Arc::new(coproduce_core::calendar::BusinessCalendar::default()),
        Notifier::new(api, dyn_clock, false),
    );
    let staff = |role: Role| {
        if role == Role::ClinicLead {
            lead
        } else {
            nurse
        }
    };
    let mut raised: Vec<String> = Vec::new();
    for sc in scenes() {
        clock.set(now - sc.ago);
        let reporter = match sc.from {
            From::Ana => Reporter::SignedIn(ana),
            From::Clara => Reporter::SignedIn(clara),
            From::Device(address) => Reporter::Device { address },
        };
        let new = NewConcern {
            unit: sc.unit.into(),
            room: sc.room.into(),
            category: sc.category.into(),
            what: sc.what.into(),
            urgent: sc.urgent,
            language: sc.language.into(),
            feedback: sc.feedback,
            after: sc.after.and_then(|i| raised.get(i).cloned()),
            ..NewConcern::default()
        };
        let r = speakup.raise(reporter, new).await?;
        for (ago, then) in sc.then {
            clock.set(now - ago);
            match then {
                Then::Ack(role) => speakup.step(staff(role), &r.id, Step::Acknowledged).await?,
                Then::Looking(role) => speakup.step(staff(role), &r.id, Step::LookingInto).await?,
                Then::Action(role, what) => {
                    let step = Step::ActionTaken { what: what.into() };
                    speakup.step(staff(role), &r.id, step).await?
                }
                Then::Answer(role, text) => {
                    let step = Step::Answered { text: text.into() };
                    speakup.step(staff(role), &r.id, step).await?
                }
                Then::Release(event) => speakup.manage(lead, &r.id, true, Some(event)).await?,
                Then::Said(heard, comment) => {
                    let follower = match (sc.from, &r.claim_code) {
                        (From::Device(address), Some(code)) => Follower::Claim { code, address },
                        (From::Ana, _) => Follower::SignedIn {
                            caller: ana,
                            id: &r.id,
                        },
                        _ => Follower::SignedIn {
                            caller: clara,
                            id: &r.id,
                        },
                    };
                    speakup.felt_heard(follower, heard, comment).await?
                }
            }
        }
        raised.push(r.id);
    }
    Ok(raised.len())
}
