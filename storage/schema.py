"""Bring an older store's tables up to the current models in place: ``create_all`` adds missing tables,
``add_missing_columns`` the nullable columns added to existing tables since (SQLite and PostgreSQL both
take ``ALTER TABLE ... ADD COLUMN``; existing rows get NULL), ``add_missing_indexes`` their new indexes."""

from __future__ import annotations

from medsearch.storage.models import Base
from sqlalchemy import Engine, inspect, text


def add_missing_columns(engine: Engine) -> list[str]:
    """Add every nullable model column missing from its table; returns ``table.column`` names added.
    Raises RuntimeError for a missing column that is not nullable (it would need a value per row)."""
    inspector = inspect(engine)
    added: list[str] = []
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable:
                    raise RuntimeError(f"cannot add the non-null column {table.name}.{column.name} in place")
                kind = column.type.compile(dialect=engine.dialect)
                connection.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
                added.append(f"{table.name}.{column.name}")
    return added


def add_missing_indexes(engine: Engine) -> list[str]:
    """Create every model index missing from an existing table (``create_all`` makes indexes only with
    their table), except those meant for another dialect; returns the index names created. Building one
    reads the whole table once (seconds at a million rows), on the first open after an upgrade."""
    added: list[str] = []
    with engine.begin() as connection:
        inspector = inspect(connection)
        for table in Base.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            present = {index["name"] for index in inspector.get_indexes(table.name)}
            missing = [index for index in table.indexes if index.name not in present]
            for index in missing:
                index.create(connection, checkfirst=True)  # honours ddl_if: nothing for another dialect
            if missing:
                made = {index["name"] for index in inspect(connection).get_indexes(table.name)} - present
                added.extend(sorted(str(name) for name in made))
    return added
