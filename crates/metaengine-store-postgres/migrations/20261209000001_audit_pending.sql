-- The sealed audit rows waiting for the chainer are listed in a table of their own, so that
-- chaining a row no longer changes an indexed column of `meta_audit`: its update can then be
-- HOT (the new version on the same page, no new entry in the table's seven indexes), where it
-- cost a new entry in each of nine. Chaining deletes the row's id from here.
-- The chainer vacuums it every few thousand rows; `vacuum_truncate = false` keeps VACUUM from
-- giving its empty pages back, which takes a lock that would stop every writer while it waits.
CREATE TABLE meta.meta_audit_pending (
    id  UUID NOT NULL,
    CONSTRAINT meta_audit_pending_pkey PRIMARY KEY (id)
) WITH (vacuum_truncate = false);
INSERT INTO meta.meta_audit_pending (id) SELECT id FROM meta.meta_audit
    WHERE seal IS NOT NULL AND seq IS NULL;
-- Every sealed row is listed as it is written, whichever statement writes it (one insert per
-- statement, from its transition table).
CREATE FUNCTION meta.audit_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO meta.meta_audit_pending (id)
        SELECT id FROM "__new" WHERE seal IS NOT NULL AND seq IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER meta_audit_pending AFTER INSERT ON meta.meta_audit
    REFERENCING NEW TABLE AS "__new" FOR EACH STATEMENT EXECUTE FUNCTION meta.audit_pending();
-- Replaced by the table above.
DROP INDEX meta.meta_audit_unchained;
-- `seq` indexed would make every chaining update a non-HOT one. Verification reads each chain
-- in order with a sort instead, and a position is still never taken twice: the chainer takes
-- it under the tenant's locked head, and `verify` reports a chain that holds one twice.
DROP INDEX meta.meta_audit_tenant_id_seq_key;
-- Room on each page for the chained version of its rows (a version can only be HOT on the page
-- of the one it replaces); pages written before keep theirs full.
ALTER TABLE meta.meta_audit SET (fillfactor = 60);
