-- Weibao's PostgreSQL: one database, a schema per service, a role per service.
--
-- Run once, as a superuser, in the (empty) database the services use; the postgres
-- image runs it from /docker-entrypoint-initdb.d on first start (deploy/compose.yaml).
--
-- Why a role per service: each service owns its event log, and the logs are the audit
-- trail (DESIGN.md). Services never read each other's tables; they learn each other's
-- facts from the JetStream streams only. A role that can reach only its own schema
-- makes that a rule of the database, not just a habit of the code, and keeps a bug or a
-- leaked password in one service away from another's log.
--
-- Each service creates its own tables (events, tracking, parked, its read models) on
-- start, inside the schema named by WEIBAO_DB_SCHEMA; owning the schema lets it.
--
-- Passwords are not set here: set them from your secret store (ALTER ROLE ... PASSWORD),
-- and put them in each service's DATABASE_URL. deploy/postgres/dev-passwords.sql sets
-- throw-away ones for deploy/compose.yaml.

CREATE ROLE weibao_contracts LOGIN;
CREATE ROLE weibao_dispatch LOGIN;
CREATE ROLE weibao_billing LOGIN;

-- A schema owned by its service's role: that role may create, change and lock its own
-- tables (the event store locks `events` to keep positions gap-free) and nothing else.
CREATE SCHEMA contracts AUTHORIZATION weibao_contracts;
CREATE SCHEMA dispatch AUTHORIZATION weibao_dispatch;
CREATE SCHEMA billing AUTHORIZATION weibao_billing;

-- No default way into anyone's data: new schemas give PUBLIC nothing, and `public` is
-- closed too, so a table created without a schema fails instead of landing where
-- every role could see it.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

