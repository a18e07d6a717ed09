-- Up Migration
-- Refused sign-ins and requests are audited too: where each came from (the client's address as the API saw
-- it), and an index for reading one principal's rows and for deleting rows past the retention period.
ALTER TABLE audit_log ADD COLUMN source TEXT;
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);

-- Down Migration
DROP INDEX audit_log_actor_idx;
ALTER TABLE audit_log DROP COLUMN source;
