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

/// Concerns in every state on the two units; returns how many were raised.
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
    let device = Reporter::Device {
        address: "demo-bedside-4w",
    };
    let concern =
        |unit: &str, category: &str, what: &str, urgent: bool, language: &str| NewConcern {
            unit: unit.into(),
            category: category.into(),
            what: what.into(),
            urgent,
            anonymous: false,
            language: language.into(),
            ..NewConcern::default()
        };
    let answer = |text: &str| Step::Answered { text: text.into() };
    let mut raised = 0;

    // Three weeks ago: Ana, at the clinic, was not told her results; she did not feel heard,
    // and came back later with another concern.
    clock.set(now - Duration::days(21));
    let first = speakup
        .raise(
            Reporter::SignedIn(ana),
            concern(
                "riverside-clinic",
                "communication",
                "Nobody called me with my blood test results.",
                false,
                "ht",
            ),
        )
        .await?;
    clock.set(now - Duration::days(20));
    speakup.step(nurse, &first.id, Step::Acknowledged).await?;
    clock.set(now - Duration::days(16));
    speakup
        .step(
            lead,
            &first.id,
            answer("Nou regrèt sa. Rezilta ou yo te nòmal; nou chanje fason nou rele moun yo."),
        )
        .await?;
    clock.set(now - Duration::days(15));
    speakup
        .felt_heard(
            Follower::SignedIn {
                caller: ana,
                id: &first.id,
            },
            Heard::No,
            "It took too long.",
        )
        .await?;
    raised += 1;

    // Two weeks ago on 4 West, from the bedside device: closed, felt heard.
    clock.set(now - Duration::days(14));
    let bedside = speakup
        .raise(
            device,
            NewConcern {
                anonymous: true,
                room: "12".into(),
                ..concern(
                    "4-west",
                    "hygiene",
                    "The bathroom in room 12 has not been cleaned since yesterday.",
                    false,
                    "es",
                )
            },
        )
        .await?;
    clock.set(now - Duration::days(14) + Duration::hours(1));
    speakup.step(nurse, &bedside.id, Step::Acknowledged).await?;
    speakup
        .step(
            nurse,
            &bedside.id,
            Step::ActionTaken {
                what: "Housekeeping cleaned the room".into(),
            },
        )
        .await?;
    speakup
        .step(
            nurse,
            &bedside.id,
            answer("Gracias por avisarnos. Limpiaron el baño y revisamos el horario de limpieza."),
        )
        .await?;
    if let Some(code) = &bedside.claim_code {
        clock.set(now - Duration::days(13));
        speakup
            .felt_heard(
                Follower::Claim {
                    code,
                    address: "demo-bedside-4w",
                },
                Heard::Yes,
                "",
            )
            .await?;
    }
    raised += 1;

    // Ten days ago, Clara on 4 West: closed, partly heard; the manager named the nurse.
    clock.set(now - Duration::days(10));
    let meds = speakup
        .raise(
            Reporter::SignedIn(clara),
            NewConcern {
                room: "8".into(),
                ..concern(
                    "4-west",
                    "medication",
                    "My mother was given her evening insulin twice.",
                    false,
                    "en",
                )
            },
        )
        .await?;
    clock.set(now - Duration::days(10) + Duration::hours(2));
    speakup.step(nurse, &meds.id, Step::Acknowledged).await?;
    speakup.step(nurse, &meds.id, Step::LookingInto).await?;
    clock.set(now - Duration::days(8));
    speakup
        .step(lead, &meds.id, answer("Thank you. Only one dose was given; the second entry was a charting error, now corrected. We have changed how doses are recorded."))
        .await?;
    speakup
        .manage(lead, &meds.id, true, Some("SE-2026-0412"))
        .await?;
    clock.set(now - Duration::days(7));
    speakup
        .felt_heard(
            Follower::SignedIn {
                caller: clara,
                id: &meds.id,
            },
            Heard::Partly,
            "I still want to talk to the doctor.",
        )
        .await?;
    raised += 1;

    // Two days ago, Ana again: answered, waiting for her word.
    clock.set(now - Duration::days(2));
    let again = speakup
        .raise(
            Reporter::SignedIn(ana),
            NewConcern {
                after: Some(first.id.clone()),
                ..concern(
                    "riverside-clinic",
                    "respect",
                    "The front desk spoke to me in English after I asked for an interpreter.",
                    false,
                    "ht",
                )
            },
        )
        .await?;
    clock.set(now - Duration::days(2) + Duration::hours(3));
    speakup.step(nurse, &again.id, Step::Acknowledged).await?;
    clock.set(now - Duration::days(1));
    speakup
        .step(
            lead,
            &again.id,
            answer("Nou regrèt sa. Nou pale ak ekip resepsyon an sou sèvis entèprèt la."),
        )
        .await?;
    raised += 1;

    // Yesterday at the clinic: action taken, answer still to come.
    clock.set(now - Duration::days(1));
    let action = speakup
        .raise(
            device_at("demo-clinic-waiting-room"),
            NewConcern {
                anonymous: true,
                ..concern(
                    "riverside-clinic",
                    "identity",
                    "Nobody checked my name before the blood test.",
                    false,
                    "pt-BR",
                )
            },
        )
        .await?;
    clock.set(now - Duration::hours(20));
    speakup.step(nurse, &action.id, Step::Acknowledged).await?;
    speakup
        .step(
            nurse,
            &action.id,
            Step::ActionTaken {
                what: "Reminded the lab team of the two-identifier check".into(),
            },
        )
        .await?;
    raised += 1;

    // This morning on 4 West: being looked into.
    clock.set(now - Duration::hours(5));
    let looking = speakup
        .raise(
            Reporter::SignedIn(clara),
            NewConcern {
                room: "8".into(),
                ..concern(
                    "4-west",
                    "communication",
                    "Nobody has told us when my mother will be discharged.",
                    false,
                    "en",
                )
            },
        )
        .await?;
    clock.set(now - Duration::hours(4));
    speakup.step(nurse, &looking.id, Step::Acknowledged).await?;
    speakup.step(nurse, &looking.id, Step::LookingInto).await?;
    raised += 1;

    // An hour ago: received, not yet acknowledged (due within 4 hours).
    clock.set(now - Duration::hours(1));
    speakup
        .raise(
            device,
            NewConcern {
                anonymous: true,
                room: "15".into(),
                ..concern(
                    "4-west",
                    "other",
                    "The call button in room 15 does not work.",
                    false,
                    "en",
                )
            },
        )
        .await?;
    raised += 1;

    // Last week, Ana's compliment to the clinic: acknowledged and answered by the practice
    // manager, and she felt heard.
    clock.set(now - Duration::days(6));
    let thanks = speakup
        .raise(
            Reporter::SignedIn(ana),
            NewConcern {
                feedback: true,
                ..concern(
                    "riverside-clinic",
                    "compliment",
                    "Rosa, the community health worker, helped me find a pharmacy I can reach by bus.",
                    false,
                    "ht",
                )
            },
        )
        .await?;
    clock.set(now - Duration::days(5));
    speakup.step(lead, &thanks.id, Step::Acknowledged).await?;
    speakup
        .step(
            lead,
            &thanks.id,
            answer("Mèsi anpil. Nou pataje mesaj ou a ak Rosa ak tout ekip la."),
        )
        .await?;
    clock.set(now - Duration::days(4));
    speakup
        .felt_heard(
            Follower::SignedIn {
                caller: ana,
                id: &thanks.id,
            },
            Heard::Yes,
            "",
        )
        .await?;
    raised += 1;

    // Forty minutes ago: urgent, and nobody has acknowledged it.
    clock.set(now - Duration::minutes(40));
    speakup
        .raise(
            device,
            NewConcern {
                anonymous: true,
                room: "12".into(),
                ..concern(
                    "4-west",
                    "condition-worse",
                    "Papa m ap respire mal epi pèsonn pa vini.",
                    true,
                    "ht",
                )
            },
        )
        .await?;
    raised += 1;
    Ok(raised)
}

fn device_at(address: &'static str) -> Reporter<'static> {
    Reporter::Device { address }
}
