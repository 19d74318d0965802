"""PostgreSQL backends of the history, session and audit stores (psycopg 3, pooled)."""
