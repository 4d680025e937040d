-- Break-glass: a care-team member opens a chart outside their teams, with a reason, for a
-- limited time. Audited when it starts, and shown to the patient.
CREATE TABLE break_glass (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    patient_id TEXT NOT NULL,
    reason     TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    until      BIGINT NOT NULL
);
CREATE INDEX break_glass_user ON break_glass (user_id, until);
CREATE INDEX break_glass_patient ON break_glass (patient_id, started_at);
