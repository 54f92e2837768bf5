-- Throw-away passwords for deploy/compose.yaml only; they match the DATABASE_URLs there.
-- Never run this against a database that holds real data: set real passwords from your
-- secret store instead.
ALTER ROLE weibao_contracts PASSWORD 'contracts-dev-only';
ALTER ROLE weibao_dispatch PASSWORD 'dispatch-dev-only';
ALTER ROLE weibao_billing PASSWORD 'billing-dev-only';
