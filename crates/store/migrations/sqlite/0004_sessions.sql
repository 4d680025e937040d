-- Sign-in sessions for the pages (tower-sessions records; our own rules decide idle and
-- absolute timeouts) and sign-in attempts for throttling.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT,
    data        TEXT NOT NULL,
    expiry_date INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_attempts (
    at       INTEGER NOT NULL,
    username TEXT NOT NULL,
    address  TEXT NOT NULL,
    ok       INTEGER NOT NULL
);
CREATE INDEX login_attempts_user ON login_attempts (username, at);
CREATE INDEX login_attempts_address ON login_attempts (address, at);
