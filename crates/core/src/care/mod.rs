//! The care plan and readings: the shared plan's rules (`plan`: whose turn it is on a goal,
//! owners, settings, cadences and due dates) and the readings' (`readings`: measures, codes,
//! units, possible values, targets, review and the HbA1c interval).

pub mod plan;
pub mod readings;
