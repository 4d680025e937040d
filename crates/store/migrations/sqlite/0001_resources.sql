-- FHIR resources: the current version of each, every version in history, and the search
-- index rows extracted on write. patient_id (the Patient compartment) is on every clinical row.
CREATE TABLE resources (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,          -- Unix milliseconds, UTC
    patient_id    TEXT,
    deleted       INTEGER NOT NULL DEFAULT 0,
    content       TEXT NOT NULL,             -- the resource's JSON, meta included
    PRIMARY KEY (resource_type, id)
);
CREATE INDEX resources_patient ON resources (patient_id, resource_type);
CREATE INDEX resources_type_updated ON resources (resource_type, last_updated);

CREATE TABLE resource_history (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,
    patient_id    TEXT,
    deleted       INTEGER NOT NULL DEFAULT 0,
    method        TEXT NOT NULL,             -- POST, PUT or DELETE
    content       TEXT,                      -- NULL for a delete
    PRIMARY KEY (resource_type, id, version_id)
);
CREATE INDEX resource_history_type_updated ON resource_history (resource_type, last_updated);

CREATE TABLE search_token (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    patient_id    TEXT,
    param         TEXT NOT NULL,
    system        TEXT,
    code          TEXT NOT NULL
);
CREATE INDEX search_token_lookup ON search_token (resource_type, param, code);
CREATE INDEX search_token_owner ON search_token (resource_type, resource_id);

CREATE TABLE search_reference (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    patient_id    TEXT,
    param         TEXT NOT NULL,
    target_type   TEXT NOT NULL,
    target_id     TEXT NOT NULL
);
CREATE INDEX search_reference_lookup ON search_reference (target_type, target_id, resource_type, param);
CREATE INDEX search_reference_owner ON search_reference (resource_type, resource_id);

CREATE TABLE search_date (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    patient_id    TEXT,
    param         TEXT NOT NULL,
    low           INTEGER NOT NULL,          -- Unix milliseconds, inclusive
    high          INTEGER NOT NULL
);
CREATE INDEX search_date_lookup ON search_date (resource_type, param, low);
CREATE INDEX search_date_owner ON search_date (resource_type, resource_id);

CREATE TABLE search_string (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    patient_id    TEXT,
    param         TEXT NOT NULL,
    value         TEXT NOT NULL              -- lower-cased
);
CREATE INDEX search_string_lookup ON search_string (resource_type, param, value);
CREATE INDEX search_string_owner ON search_string (resource_type, resource_id);
