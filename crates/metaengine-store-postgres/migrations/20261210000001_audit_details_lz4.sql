-- A batch's and an import's `data.create` audit row holds every created record's values (SPEC
-- §16): up to a thousand records, some 200 KB of JSON, which PostgreSQL compresses out of line
-- (TOAST). Its default method, pglz, took 8 % of the database's CPU during a large import; lz4
-- compresses several times faster. Values already stored keep their method. A server built
-- without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE meta.meta_audit ALTER COLUMN details SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available on this server: audit details stay compressed with pglz';
END $$;
