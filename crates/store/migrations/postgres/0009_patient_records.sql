-- The measure projection: one row per live patient holding every resource in their
-- compartment cut down to the elements population measures read (a line per resource
-- type: the type, a tab, the JSON list; LZ4-compressed), kept in
-- step with the resources by every write transaction, so a population run reads one short
-- row per patient. `store_meta` records which version of the projection the rows follow;
-- the first run after a change of version rebuilds them.
CREATE TABLE patient_records (
    patient_id TEXT PRIMARY KEY,
    record BYTEA NOT NULL
);

CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
