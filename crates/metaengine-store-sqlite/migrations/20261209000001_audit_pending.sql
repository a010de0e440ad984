-- The sealed audit rows waiting for the chainer are listed in a table of their own, as on
-- PostgreSQL (where it lets the chaining update be HOT); chaining deletes the row's id from
-- here. SQLite keeps its `(tenant_id, seq)` index: it serves verification's pages, and SQLite
-- updates a row's index entries only for the columns that change.
CREATE TABLE meta_audit_pending (
    id  TEXT NOT NULL PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO meta_audit_pending (id) SELECT id FROM meta_audit
    WHERE seal IS NOT NULL AND seq IS NULL;
-- Every sealed row is listed as it is written, whichever statement writes it.
CREATE TRIGGER meta_audit_pending AFTER INSERT ON meta_audit
    FOR EACH ROW WHEN NEW.seal IS NOT NULL AND NEW.seq IS NULL
    BEGIN INSERT INTO meta_audit_pending (id) VALUES (NEW.id); END;
-- Replaced by the table above.
DROP INDEX meta_audit_unchained;
