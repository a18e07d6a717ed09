-- Up Migration
-- Processes cache what they read on every request (the repository catalog,
-- verified tokens) and drop the cache when the tables change: a statement
-- trigger notifies the channel given as its argument on commit, with the
-- schema as payload (tests share one database, one schema each).
CREATE FUNCTION notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], TG_TABLE_SCHEMA);
  RETURN NULL;
END;
$$;

CREATE TRIGGER repositories_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON repositories
  FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('pk_catalog_changed');
CREATE TRIGGER repository_branches_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON repository_branches
  FOR EACH STATEMENT EXECUTE FUNCTION notify_changed('pk_catalog_changed');

-- Down Migration
DROP TRIGGER repository_branches_changed ON repository_branches;
DROP TRIGGER repositories_changed ON repositories;
DROP FUNCTION notify_changed();
