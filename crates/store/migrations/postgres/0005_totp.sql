-- An optional TOTP second factor (RFC 6238); the base32 secret is needed to check codes.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
