-- One membership re-check per person at a time across processes: the process re-checking with
-- Discord holds this lease (its random holder id and an expiry, Unix seconds) and releases it
-- when done; a crashed holder's lease simply runs out.
ALTER TABLE users ADD COLUMN recheck_holder TEXT;
ALTER TABLE users ADD COLUMN recheck_until INTEGER;
