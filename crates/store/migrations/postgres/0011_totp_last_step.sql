-- The last TOTP time step (Unix seconds / 30) accepted for a user: a code is accepted once,
-- never again within its window.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
