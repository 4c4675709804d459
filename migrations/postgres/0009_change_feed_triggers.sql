-- Issue 30: SQLite's change-feed triggers (0009 there). Postgres has had its own since 0008;
-- this number exists here so both folders hold the same migrations.
SELECT 1;
