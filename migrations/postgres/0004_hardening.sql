-- Issue 9 (hardening): pending Discord logins are capped per source address, and a browser's
-- new login replaces its previous one. `source` is the address key the limits use (IPv6 by
-- its /64); it lives only as long as the pending login (at most ten minutes).
ALTER TABLE upstream_logins ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX upstream_logins_source_expires_at ON upstream_logins (source, expires_at);
CREATE INDEX upstream_logins_binding_hash ON upstream_logins (binding_hash);
