"""Fixtures shared by every test package."""

# The throwaway PostgreSQL server: ``postgres_url`` (one per run), ``postgres_db_url`` (one
# database per test). See tests/postgres_server.py.
pytest_plugins = ["postgres_server"]
