//! The use-cases of coproduce. Each one loads from the store, decides with `core` and the
//! FHIR rules, and saves in one transaction. The web layer and the CLI call these, never
//! the store directly.

pub mod accounts;
pub mod audit_events;
pub mod care;
pub mod deadlines;
pub mod demo;
pub mod error;
pub mod evaluation;
pub mod fhir_api;
pub mod import;
pub mod measures;
pub mod notify;
pub mod protocol;
pub mod rescue;
pub mod secrets;
pub mod spreadsheet;
pub mod synthetic;
pub mod value;

pub use care::{Care, CareError};
pub use coproduce_store::{NotificationRow, SessionRow, Store, Stored, UserRow};
pub use error::AppError;
pub use fhir_api::{FhirApi, Written};
pub use import::{ImportSummary, Importer};
