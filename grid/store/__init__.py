"""Time-series store: SQLAlchemy tables, engines, migrations, bulk upserts and read-back.

SQLite (``./quartiere.sqlite``) is the embedded default; set ``GRID_DATABASE_URL`` (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) for PostgreSQL.
"""
