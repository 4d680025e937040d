-- The language a person chose for the app (a BCP 47 tag); none means: from their record.
ALTER TABLE users ADD COLUMN language TEXT;
