-- Up Migration
-- Processes cache the repository catalog (searches read it on every call) and
-- drop the cache when this fires: on commit of any change to repositories or
-- their branches, with the schema as payload (tests share one database).
CREATE FUNCTION notify_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pk_catalog_changed', TG_TABLE_SCHEMA);
  RETURN NULL;
END;
$$;

CREATE TRIGGER repositories_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON repositories
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER repository_branches_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON repository_branches
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();

-- Down Migration
DROP TRIGGER repository_branches_changed ON repository_branches;
DROP TRIGGER repositories_changed ON repositories;
DROP FUNCTION notify_catalog_changed();
