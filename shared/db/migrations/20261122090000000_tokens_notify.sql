-- Up Migration
-- API processes cache verified tokens and drop the cache when this fires, so a
-- revocation, rotation or expiry change applies from the next request on.
CREATE TRIGGER api_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('pk_tokens_changed');

-- Down Migration
DROP TRIGGER api_tokens_changed ON api_tokens;
