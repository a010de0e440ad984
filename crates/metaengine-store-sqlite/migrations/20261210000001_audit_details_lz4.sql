-- PostgreSQL compresses large audit details with lz4 from this version on. SQLite does not
-- compress values; this version keeps the two backends' migration lists alike.
SELECT 1;
