-- The head of the audit trail sealed with a key kept outside the database (HMAC-SHA256 of
-- its number and hash): someone able to rewrite the table cannot cut rows from the end and
-- rewrite the head without it showing.
ALTER TABLE audit_head ADD COLUMN seal TEXT;
