"""The ``legacy`` database alias: the member directory's source, opened read-only.

Imported by ``config/settings.py``, so it holds plain data only (no models, no Django set-up).
The connection itself refuses writes, whatever the code above it does: MariaDB/MySQL sessions
start with ``SET SESSION TRANSACTION READ ONLY`` and an SQLite source is opened with
``mode=ro``. ``directory.routers.SourceDatabaseRouter`` sends nothing else there.
"""

from __future__ import annotations

from pathlib import Path

MYSQL_ENGINES = ("django.db.backends.mysql",)
READ_ONLY_MYSQL_SESSION = "SET SESSION TRANSACTION READ ONLY"


def source_database(config: dict | None, *, sqlite_path: Path, time_zone: str = "UTC") -> dict:
    """Django's settings for the source alias, from ``env.db_url_config(DIRECTORY_SOURCE_URL)``
    or, with no URL, the embedded demo source at ``sqlite_path``.

    ``time_zone``: the zone the source's naive DATETIME columns are written in (MariaDB and
    SQLite store no zone; Django reads them as this zone's wall-clock time).
    """
    if config is None:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_path)}
    config = dict(config)
    options = dict(config.get("OPTIONS") or {})
    if config["ENGINE"] in MYSQL_ENGINES:
        options.setdefault("charset", "utf8mb4")
        options["init_command"] = READ_ONLY_MYSQL_SESSION
    elif config["ENGINE"] == "django.db.backends.sqlite3":
        # Django opens SQLite with uri=True, so a file: URI with mode=ro works as the name.
        config["NAME"] = f"file:{config['NAME']}?mode=ro"
    config["OPTIONS"] = options
    if "postgresql" not in config["ENGINE"]:  # PostgreSQL stores zones itself and refuses the setting
        config["TIME_ZONE"] = time_zone
    # The source is read by jobs only, in short bursts: no connection kept between runs.
    config["CONN_MAX_AGE"] = 0
    return config
