"""A legacy source database for tests: MariaDB (its own database per test run) or an SQLite file.

``LegacySource`` builds the legacy tables (``directory.legacy_schema``) and writes rows through
a plain DB-API connection, as the legacy system would; the code under test reads them through
the read-only ``legacy`` alias, which ``source_alias`` points at this database for a test.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from datetime import date, datetime

from django.db import connections

from directory import legacy_schema
from directory.routers import SOURCE_ALIAS
from directory.source_settings import source_database

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
T0 = datetime(2025, 3, 1, 6, 0, 0)


def mariadb_connect(database: str | None = None):
    import MySQLdb

    kwargs = dict(MARIADB, charset="utf8mb4", autocommit=True, connect_timeout=3)
    if database:
        kwargs["database"] = database
    return MySQLdb.connect(**kwargs)


def mariadb_database_name() -> str:
    return f"legacy_test_{os.getpid()}"


@contextmanager
def source_alias(config: dict):
    """Point the ``legacy`` alias at ``config`` (Django DATABASES entry) for the block.

    The alias's settings entry is replaced and its connection object dropped, so the next use
    builds a connection (of the new engine) from the new entry; both come back afterwards.
    """
    old_connection = connections[SOURCE_ALIAS]
    old_settings = connections.settings[SOURCE_ALIAS]
    connections.settings[SOURCE_ALIAS] = {**old_settings, **config}
    del connections[SOURCE_ALIAS]
    try:
        yield
    finally:
        connections[SOURCE_ALIAS].close()
        connections.settings[SOURCE_ALIAS] = old_settings
        connections[SOURCE_ALIAS] = old_connection


class LegacySource:
    """Writes legacy rows. ``kind`` is ``mariadb`` or ``sqlite``."""

    def __init__(self, kind: str, connection, config: dict) -> None:
        self.kind = kind
        self.connection = connection
        self.config = config  # the Django alias entry that reads this database
        self.placeholder = "%s" if kind == "mariadb" else "?"

    @classmethod
    def sqlite(cls, path) -> LegacySource:
        connection = sqlite3.connect(str(path), isolation_level=None)
        for statement in legacy_schema.SQLITE:
            connection.execute(statement)
        return cls("sqlite", connection, source_database(None, sqlite_path=path))

    def execute(self, sql: str, params=()) -> int:
        sql = sql.replace("%s", self.placeholder)
        cursor = self.connection.cursor()
        cursor.execute(sql, params)
        return cursor.rowcount

    def insert(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        cursor = self.connection.cursor()
        cursor.executemany(legacy_schema.insert_sql(table, placeholder=self.placeholder), [self.adapt(r) for r in rows])
        if self.kind == "mariadb":
            self.connection.commit()

    def adapt(self, row: tuple) -> tuple:
        if self.kind == "mariadb":
            return row
        # sqlite3: text as the legacy application wrote it (SQLite has no date types).
        return tuple(
            v.isoformat(" ") if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v for v in row
        )

    # --- rows a test reads like sentences ---------------------------------------------------

    def region(self, code: str, name: str | None = None, *, at: datetime = T0) -> None:
        self.insert("tblRegion", [(code, name or f"Region {code}", at)])

    def facility(self, code: str, *, region: str | None = "NE", name: str | None = None, at: datetime = T0) -> None:
        self.insert("tblFacility", [(code, name or f"Facility {code}", region, "Springfield", "ma", at)])

    def member(
        self,
        number: str,
        *,
        first: str = "Ana",
        last: str = "Lopez",
        email: str | None = None,
        status: str = "Active",
        facility: str | None = "F1",
        at: datetime = T0,
    ) -> None:
        email = email if email is not None else f"{number.lower()}@example.com"
        row = (number, first, last, email, "555-0100", status, facility, date(2010, 5, 1), at)
        self.insert("tblMember", [row])

    def position(self, member: str, facility: str = "F1", *, title: str = "Nurse", at: datetime = T0) -> None:
        self.insert("tblMemberPosition", [(member, facility, title, date(2020, 1, 1), None, 1, at)])

    def update_member(self, number: str, *, at: datetime, **columns) -> None:
        sets = ", ".join(f"{column} = %s" for column in columns)
        self.execute(
            f"UPDATE tblMember SET {sets}, updated_at = %s WHERE MemberNo = %s",
            (*columns.values(), self.adapt((at,))[0], number),
        )
        if self.kind == "mariadb":
            self.connection.commit()

    def delete_member(self, number: str) -> None:
        self.execute("DELETE FROM tblMemberPosition WHERE MemberNo = %s", (number,))
        self.execute("DELETE FROM tblMember WHERE MemberNo = %s", (number,))
        if self.kind == "mariadb":
            self.connection.commit()

    def truncate(self) -> None:
        self.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in legacy_schema.TABLES:
            self.execute(f"TRUNCATE TABLE {table}")
        self.execute("SET FOREIGN_KEY_CHECKS = 1")
