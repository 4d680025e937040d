-- The patients whose measure projection row is behind their resources. A write marks the
-- patients it touched here instead of rebuilding their rows, so its cost does not grow with
-- the size of their records; the background pass and every population run bring the marked
-- rows up to date (rebuilt and unmarked in one transaction) before a run reads them.
CREATE TABLE patient_records_pending (
    patient_id TEXT PRIMARY KEY
);
