//! The use-cases of coproduce. Each one loads from the store, decides with `core` and the
//! FHIR rules, and saves in one transaction. The web layer and the CLI call these, never
//! the store directly.

// The workflows, one folder each: the care plan and readings, the rescue pack, population
// measures and evaluation, accounts and access.
pub mod accounts;
pub mod care;
pub mod measures;
pub mod prescribing;
pub mod rescue;
pub mod social;
pub mod speakup;

// What the workflows share: the FHIR API (with the write rules workflows register), the
// audit trail, errors, the deadline engine, notifications, translations, our vocabulary.
pub mod audit_events;
pub mod caller;
pub mod deadlines;
mod draw;
pub mod error;
pub mod fhir_api;
pub mod i18n;
pub mod import;
pub mod notify;
pub mod secrets;
pub mod spreadsheet;
pub mod vocabulary;

// Putting them together: the workflows over one API, the background jobs, the demo, a
// generated population.
pub mod demo;
pub mod jobs;
pub mod synthetic;
pub mod workflows;

pub use care::Care;
pub use coproduce_store::{NotificationRow, SessionRow, Store, Stored, UserRow};
pub use error::AppError;
pub use error::CareError;
pub use fhir_api::{FhirApi, Written};
pub use import::{ImportSummary, Importer};
