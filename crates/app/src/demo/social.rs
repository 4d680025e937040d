//! The demo's social needs: a community directory of thirteen services from twelve fictional
//! organisations, and Ana's screening (food and transportation positive), with her word on
//! each need: help with food, not now for transportation.

use crate::caller::Caller;
use crate::error::{AppError, CareError};
use crate::social::Social;
use crate::social::directory::{parse_csv, resources};
use coproduce_core::social::Choice;
use coproduce_core::social::ahc::Domain;
use serde_json::Value;

/// The demo's community directory, as its administrator would load it.
pub const DIRECTORY_CSV: &str = include_str!("../../directory/demo-community.csv");

/// The directory's Organizations and HealthcareServices.
pub fn directory() -> Result<Vec<Value>, CareError> {
    let rows = parse_csv(DIRECTORY_CSV.as_bytes())
        .map_err(|e| CareError::App(AppError::Internal(format!("the demo directory: {e}"))))?;
    Ok(resources(&rows))
}

/// Ana answers the screen on her phone and says what she wants help with; the community
/// health worker refers her food need to the Eastside pantry, whose partner account sees it.
pub async fn story(
    social: &Social,
    ana: &Caller,
    chw: &Caller,
    patient: &str,
) -> Result<usize, CareError> {
    let answers: Vec<(String, Vec<String>)> = [
        ("71802-3", "LA31993-1"),
        ("96778-6", "LA9-3"),
        ("88122-7", "LA6729-3"),
        ("88123-5", "LA6729-3"),
        ("93030-5", "LA33-6"),
        ("96779-4", "LA32-8"),
        ("95618-5", "LA6270-8"),
        ("95617-7", "LA6270-8"),
        ("95616-9", "LA6270-8"),
        ("95615-1", "LA6270-8"),
    ]
    .iter()
    .map(|(q, a)| (q.to_string(), vec![a.to_string()]))
    .collect();
    social.save(ana, patient, None, &answers, true).await?;
    let needs = social.needs(ana, patient).await?;
    for need in &needs {
        let choice = match need.domain {
            Some(Domain::Food) => Choice::WantHelp,
            _ => Choice::NotNow,
        };
        social.choose(ana, patient, &need.id, choice).await?;
        if choice == Choice::WantHelp {
            social
                .refer(
                    chw,
                    patient,
                    &need.id,
                    "eastside-pantry-groceries",
                    "Prefers Saturday mornings.",
                )
                .await?;
        }
    }
    Ok(needs.len())
}
