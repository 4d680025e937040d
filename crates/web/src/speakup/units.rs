//! The units' open links, each with a QR code to print and put up at the bedside or in the
//! waiting room (drawn by the qrcode crate as SVG): the way a device reaches a unit's form.

use super::*;

pub(crate) struct UnitPoster {
    name: String,
    place: String,
    link: String,
    qr: String,
}

#[derive(Template)]
#[template(path = "speakup_units.html")]
pub(crate) struct UnitsPage {
    f: Frame,
    units: Vec<UnitPoster>,
}

/// A link as a QR code, in SVG; empty if it cannot be one (a link far too long).
fn qr(link: &str) -> String {
    match qrcode::QrCode::new(link.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

pub(crate) async fn units_page(State(s): State<AppState>, session: Session) -> Response {
    let p = match person(&s, &session).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.t();
    let units = match s.speakup.unit_links(&p.caller).await {
        Ok(u) => u,
        Err(e) => return failed(&t, e),
    };
    let base = s.config.public_url.trim_end_matches('/');
    let units = units
        .into_iter()
        .map(|u| {
            let link = format!("{base}/speakup/unit/{}", u.id);
            UnitPoster {
                place: t.t(match u.place {
                    coproduce_core::speakup::Place::Inpatient => "team-unit-inpatient",
                    coproduce_core::speakup::Place::Outpatient => "team-unit-outpatient",
                }),
                qr: qr(&link),
                link,
                name: u.name,
            }
        })
        .collect();
    let page = UnitsPage {
        f: p.frame(t.t("team-units-title"), None, None),
        units,
    };
    render(&page, StatusCode::OK)
}
