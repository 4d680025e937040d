-- Attempts counted per address for throttling what needs no sign-in (a claim code tried, a
-- concern raised from a unit's open form); sign-in keeps its own table.
CREATE TABLE attempts (
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    address TEXT NOT NULL,
    ok      INTEGER NOT NULL
);
CREATE INDEX attempts_kind_address ON attempts (kind, address, at);
