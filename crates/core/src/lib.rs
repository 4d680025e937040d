//! The domain of coproduce: rules, state machines and the access policy, over plain types.
//!
//! No I/O, no async, no database, no HTTP, no JSON. Time is a parameter: code here never
//! reads the clock; callers pass `now` (from a [`Clock`] at the edge).

pub mod access;
pub mod calendar;
pub mod careplan;
pub mod clock;
pub mod deadline;
pub mod readings;
pub mod rescue;
pub mod session;

pub use clock::{Clock, FakeClock, SystemClock, from_unix_millis, unix_millis};
