//! Social needs (CLINICAL.md section 4): the CMS Accountable Health Communities health-related
//! social needs screening (AHC HRSN, panel LOINC 96777-8) scored by the exact rules of its
//! table. `ahc` holds the items, their answers and which answers are positive; [`score`]
//! turns a response into each domain's result and the interpersonal-safety total. Answers are
//! checked against the instrument and the question they belong to, never by the question
//! code alone: PRAPARE reuses some of these codes with other answers. `referral` is a
//! community referral's Task through the Gravity SDOH Clinical Care IG's statuses, each set by
//! its side, every ending with its reason.

pub mod ahc;
pub mod referral;

pub use ahc::{Answer, Domain, DomainResult, Item, Screen, ScreenRefused, score};
