-- Audit rows are chained after their transaction commits (SPEC §16): a request's transaction
-- writes its rows with `seal = HMAC(audit key, content)` and no position, and the engine's
-- chainer appends them to their tenants' chains in batches, so that a tenant's writes no longer
-- wait for each other's commits. The key is not in the database: a row without a valid seal and
-- without a position was inserted by hand, which `audit verify` reports.
ALTER TABLE meta_audit ADD COLUMN seal TEXT;
-- The rows the chainer has not reached yet (few at any time).
CREATE INDEX meta_audit_unchained ON meta_audit (id) WHERE seq IS NULL;
