"""Fixtures of the directory tests: a legacy source database behind the ``legacy`` alias.

``source`` is parametrised: ``mariadb`` (marked ``mariadb``: the PostgreSQL pass) reads a
MariaDB database of this test run, ``legacy_test_<pid>``, created once and dropped at the end;
``sqlite`` (marked ``embedded``: the SQLite pass) reads an SQLite file, as the embedded mode does.
"""

from __future__ import annotations

import pytest

from directory import legacy_schema
from directory.source_settings import source_database
from tests.services import service_missing

from .legacy import MARIADB, LegacySource, mariadb_connect, mariadb_database_name, source_alias


@pytest.fixture(scope="session")
def mariadb_database():
    """The run's own MariaDB database with the legacy tables; dropped when the run ends."""
    try:
        import MySQLdb
    except ImportError:
        service_missing("the mysqlclient package (pip install -r requirements.txt)")
    try:
        server = mariadb_connect()
    except MySQLdb.OperationalError as exc:
        service_missing(f"MariaDB at {MARIADB['host']}:{MARIADB['port']} ({exc})")
    name = mariadb_database_name()
    cursor = server.cursor()
    cursor.execute(f"DROP DATABASE IF EXISTS {name}")
    cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    database = mariadb_connect(name)
    for statement in legacy_schema.MYSQL:
        database.cursor().execute(statement)
    try:
        yield name, database
    finally:
        database.close()
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        server.close()


@pytest.fixture(
    params=[
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("sqlite", marks=pytest.mark.embedded),
    ]
)
def source(request, tmp_path):
    """An empty legacy source; the ``legacy`` alias reads it during the test."""
    if request.param == "mariadb":
        name, database = request.getfixturevalue("mariadb_database")
        config = source_database(
            {
                "ENGINE": "django.db.backends.mysql",
                "NAME": name,
                "USER": MARIADB["user"],
                "PASSWORD": "",
                "HOST": MARIADB["host"],
                "PORT": MARIADB["port"],
            },
            sqlite_path=tmp_path / "unused.sqlite3",
        )
        legacy = LegacySource("mariadb", database, config)
        legacy.truncate()
    else:
        legacy = LegacySource.sqlite(tmp_path / "legacy.sqlite3")
    with source_alias(legacy.config):
        yield legacy
