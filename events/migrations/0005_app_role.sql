-- The role the long-running services (worker, projector, API) work as: they
-- may read and append events and nothing else on that table. Even with the
-- immutability triggers dropped, UPDATE, DELETE and TRUNCATE on events are
-- refused to this role by privilege (invariant 1 of docs/architecture.md, twice over).
--
-- The services connect with DATABASE_URL's login, apply migrations with it,
-- then SET ROLE escalations_app on every pooled connection (events/database.py).
-- Roles belong to the server, not the database: created once, granted per database.
DO $$
BEGIN
    CREATE ROLE escalations_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database on this server (or a concurrent migrator) made it
END
$$;

DO $$
BEGIN
    -- The migrating login must be able to SET ROLE to it (superusers can anyway).
    EXECUTE format('GRANT escalations_app TO %I', current_user);
EXCEPTION WHEN duplicate_object OR invalid_grant_operation THEN
    NULL;
END
$$;

REVOKE ALL ON events FROM escalations_app;
GRANT SELECT, INSERT ON events TO escalations_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    projection_checkpoints, case_list, case_breaches, audit_trail, root_cause_occurrences,
    systemic_cases, systemic_issues, accounts_at_risk, notifications, notification_cases,
    api_tokens, api_idempotency, account_signals, proactive_cases
    TO escalations_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO escalations_app;
-- Tables created later by this login (new migrations, rebuilt read models) are the
-- services' to read and write; the events table never is (it already exists).
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO escalations_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO escalations_app;
