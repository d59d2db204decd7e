"""The PostgreSQL migrations (``NNN_*.sql``, applied in order by :func:`parrotwatch.db.migrate`)."""

#: The role Grafana reads as, created NOLOGIN by migration 012 (here so that code which only
#: names it, such as the CLI's help, need not load psycopg).
READER_ROLE = "parrotwatch_reader"
