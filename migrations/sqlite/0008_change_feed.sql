-- Issue 28: the change feed's table, kept identical to Postgres's (0008 there). SQLite serves
-- one process that reads its database at every request, so nothing writes it here; it exists
-- so both backends have the same schema and the same clean-up.
CREATE TABLE changes (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT    NOT NULL,
    key  TEXT    NOT NULL,
    at   INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes (at);
