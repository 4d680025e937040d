-- The time zone a user chose for the times they read and type (an IANA name); none: the site's.
ALTER TABLE users ADD COLUMN time_zone TEXT;
