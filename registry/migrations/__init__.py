"""Alembic migrations of the registry (tables from landflow/registry.py).

A package so that an installed landflow finds them: `landflow.migrate` runs them.
"""
