-- Team deadlines: one row for each open Task that carries an escalation chain, kept in step
-- with the Task by every write (like the search index), so the watcher finds what falls due
-- with one range scan.
CREATE TABLE deadlines (
    task_id TEXT PRIMARY KEY,
    patient_id TEXT,
    level INTEGER NOT NULL,
    due_at BIGINT NOT NULL
);
CREATE INDEX deadlines_due ON deadlines (due_at);

-- Every missed deadline, once: the key (task, level) is the claim that keeps one deadline
-- from firing twice, across restarts and between servers.
CREATE TABLE deadline_misses (
    task_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    patient_id TEXT,
    role TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, level)
);
CREATE INDEX deadline_misses_fired ON deadline_misses (fired_at);

-- Notifications: shown in the app, and delivered by email or webhook. Written in the same
-- transaction as the change they tell of; delivery marks them sent.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    patient_id TEXT,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT,
    language TEXT NOT NULL,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    sent_at BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    read_at BIGINT
);
CREATE INDEX notifications_pending ON notifications (channel, sent_at);
CREATE INDEX notifications_recipient ON notifications (recipient, created_at);

-- How a person wants to be told: an email address when they want email.
CREATE TABLE notification_prefs (
    subject TEXT PRIMARY KEY,
    email TEXT
);
