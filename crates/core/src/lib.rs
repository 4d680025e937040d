//! The domain of coproduce: rules, state machines and the access policy, over plain types.
//!
//! No I/O, no async, no database, no HTTP, no JSON. Time is a parameter: code here never
//! reads the clock; callers pass `now` (from a [`Clock`] at the edge).

// The workflows' rules, one module each: accounts and access (the policy and sign-in), the
// care plan and readings, the rescue pack, social needs, prescribing, Speak Up, and the
// partnership's scorecard over all of them.
pub mod access;
pub mod care;
pub mod partnership;
pub mod prescribing;
pub mod rescue;
pub mod social;
pub mod speakup;

// What they share: time, the business calendar and deadlines with escalation.
pub mod calendar;
pub mod clock;
pub mod deadline;

pub use clock::{Clock, FakeClock, SystemClock, from_unix_millis, unix_millis};
