//! The care plan and readings: the shared plan's rules (`plan`: whose turn it is on a goal,
//! owners, settings, cadences and due dates), the readings' (`readings`: measures, codes,
//! units, possible values, review and the HbA1c interval), `targets` (the ranges readings are
//! compared with and where a reading stands) and the readings that need
//! a response now (`safety`: lows, very high glucose, a crisis pressure).

pub mod plan;
pub mod readings;
pub mod safety;
pub mod targets;
