-- The patients whose measure projection row is behind their resources. A write marks the
-- patients it touched here instead of rebuilding their rows, so its cost does not grow with
-- the size of their records; the background pass and every population run bring the marked
-- rows up to date before a run reads them. `marks` counts the writes since the row was last
-- rebuilt, so a rebuild read outside the write transaction can tell whether a write came in
-- between.
CREATE TABLE patient_records_pending (
    patient_id TEXT PRIMARY KEY,
    marks      BIGINT NOT NULL DEFAULT 1
);
