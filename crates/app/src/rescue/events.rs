//! A recorded event of a pack as an extension on its CarePlan, and back.

use super::*;

pub(super) fn sub(url: &str, key: &str, value: Value) -> Value {
    let mut o = json!({ "url": url });
    o[key] = value;
    o
}

/// An event as the complex extension that records it on the pack's CarePlan.
pub fn event_extension(r: &Recorded) -> Value {
    let mut parts = vec![
        sub("kind", "valueCode", json!(r.event.kind())),
        sub("at", "valueDateTime", json!(instant(r.at))),
        sub("role", "valueCode", json!(r.by.role.as_str())),
        sub("by", "valueReference", reference_or_display(&r.by.who)),
    ];
    let items = |items: &[Item]| -> Vec<Value> {
        items
            .iter()
            .map(|i| {
                json!({"url": "item", "extension": [
                    sub("drug", "valueCode", json!(i.drug)),
                    sub("expires", "valueDate", json!(fmt_date(i.expires))),
                ]})
            })
            .collect()
    };
    match &r.event {
        Event::Eligible { reason } => parts.push(sub("reason", "valueString", json!(reason))),
        Event::Dispensed { items: i } | Event::Replaced { items: i } => parts.extend(items(i)),
        Event::Started {
            symptoms,
            since,
            taken,
        } => {
            parts.extend(
                symptoms
                    .iter()
                    .map(|s| sub("symptom", "valueCode", json!(s))),
            );
            parts.push(sub("since", "valueDateTime", json!(instant(*since))));
            parts.extend(taken.iter().map(|d| sub("taken", "valueCode", json!(d))));
        }
        Event::Contacted { note } if !note.trim().is_empty() => {
            parts.push(sub("note", "valueString", json!(note)))
        }
        Event::CheckedIn { answer } => {
            parts.push(sub("answer", "valueCode", json!(answer.as_str())))
        }
        Event::Outcome { outcome } => {
            parts.push(sub("outcome", "valueCode", json!(outcome.as_str())))
        }
        Event::TaughtBack | Event::Expired | Event::Contacted { .. } => {}
    }
    json!({"url": EVENT_EXT, "extension": parts})
}

/// Reads an event back from its extension.
pub fn event_of(ext: &Value) -> Option<Recorded> {
    let parts = ext["extension"].as_array()?;
    let one = |url: &str| parts.iter().find(|p| p["url"] == url);
    let all = |url: &'static str| parts.iter().filter(move |p| p["url"] == url);
    let code = |url: &str| one(url).and_then(|p| p["valueCode"].as_str());
    let items = || -> Option<Vec<Item>> {
        all("item")
            .map(|i| {
                let ps = i["extension"].as_array()?;
                let drug = ps.iter().find(|p| p["url"] == "drug")?["valueCode"].as_str()?;
                let expires = date_of(&ps.iter().find(|p| p["url"] == "expires")?["valueDate"])?;
                Some(Item {
                    drug: drug.to_string(),
                    expires,
                })
            })
            .collect()
    };
    let event = match code("kind")? {
        "eligible" => Event::Eligible {
            reason: one("reason")?["valueString"].as_str()?.to_string(),
        },
        "taught-back" => Event::TaughtBack,
        "dispensed" => Event::Dispensed { items: items()? },
        "replaced" => Event::Replaced { items: items()? },
        "started" => Event::Started {
            symptoms: all("symptom")
                .filter_map(|p| p["valueCode"].as_str().map(str::to_string))
                .collect(),
            since: time_of(&one("since")?["valueDateTime"])?,
            taken: all("taken")
                .filter_map(|p| p["valueCode"].as_str().map(str::to_string))
                .collect(),
        },
        "contacted" => Event::Contacted {
            note: one("note")
                .and_then(|p| p["valueString"].as_str())
                .unwrap_or("")
                .to_string(),
        },
        "checked-in" => Event::CheckedIn {
            answer: CheckIn::parse(code("answer")?)?,
        },
        "outcome" => Event::Outcome {
            outcome: Outcome::parse(code("outcome")?)?,
        },
        "expired" => Event::Expired,
        _ => return None,
    };
    Some(Recorded {
        event,
        by: By {
            role: Role::parse(code("role")?)?,
            who: who_of(&one("by")?["valueReference"]),
        },
        at: time_of(&one("at")?["valueDateTime"])?,
    })
}
