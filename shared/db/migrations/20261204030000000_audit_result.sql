-- Up Migration
-- Maintenance jobs (backups, restores, verifications, prunes, rotations) are audited with their outcome and
-- how long they took; earlier rows (token changes) were all successes.
ALTER TABLE audit_log
  ADD COLUMN result      TEXT NOT NULL DEFAULT 'ok' CHECK (result IN ('ok', 'failed', 'refused')),
  ADD COLUMN duration_ms INTEGER;
CREATE INDEX audit_log_action_idx ON audit_log (action, at);

-- Down Migration
DROP INDEX audit_log_action_idx;
ALTER TABLE audit_log DROP COLUMN duration_ms, DROP COLUMN result;
