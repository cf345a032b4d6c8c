-- A read-only role for analysts: SELECT on every table and view, now and in the future.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'temper_analyst') THEN
    CREATE ROLE temper_analyst NOLOGIN;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO temper_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO temper_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO temper_analyst;
