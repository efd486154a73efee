"""The governance approval registry: partners, stewards, datasets, agreements, requests, reviews, audit.

Its own database (SQLite by default, a PostgreSQL URL works unchanged) through SQLAlchemy 2, with
Alembic migrations. Every state-changing action is a keyword-only function in ``workflow`` that
writes its audit entry in the same transaction; ``policy.decide`` is the one function every gate calls.
"""
