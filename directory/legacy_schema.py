"""The legacy source's tables as the legacy system created them (MariaDB/MySQL and SQLite).

The sync jobs only read these tables (``directory.models.legacy``). This DDL exists for the
places that must build a source: the embedded demo source (``directory.demo``), the tests'
source databases and the benchmark. docs/directory.md describes every column.

What makes them "legacy": upper-case ``tbl`` names with short column names, statuses as free
``VARCHAR`` text (any case, stray spaces), naive ``DATETIME`` ``updated_at`` columns, and a
member's facility and a facility's region referenced by code, not by id.
"""

from __future__ import annotations

TABLES = ("tblMemberPosition", "tblMember", "tblFacility", "tblRegion")

MYSQL = [
    """CREATE TABLE tblRegion (
        RegionCode VARCHAR(10) NOT NULL PRIMARY KEY,
        RegionName VARCHAR(100) NOT NULL,
        updated_at DATETIME NOT NULL,
        KEY ix_region_updated (updated_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblFacility (
        FacID INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        FacCode VARCHAR(12) NOT NULL,
        FacName VARCHAR(150) NOT NULL,
        RegionCode VARCHAR(10) NULL,
        City VARCHAR(80) NULL,
        StateCd CHAR(2) NULL,
        updated_at DATETIME NOT NULL,
        UNIQUE KEY ux_facility_code (FacCode),
        KEY ix_facility_updated (updated_at),
        CONSTRAINT fk_facility_region FOREIGN KEY (RegionCode) REFERENCES tblRegion (RegionCode)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblMember (
        MemberID INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        MemberNo VARCHAR(20) NOT NULL,
        FirstName VARCHAR(60) NULL,
        LastName VARCHAR(60) NULL,
        EmailAddr VARCHAR(254) NULL,
        PhoneNo VARCHAR(30) NULL,
        MbrStatus VARCHAR(20) NULL,
        HomeFacCode VARCHAR(12) NULL,
        HireDate DATE NULL,
        updated_at DATETIME NOT NULL,
        UNIQUE KEY ux_member_no (MemberNo),
        KEY ix_member_updated (updated_at, MemberID),
        CONSTRAINT fk_member_facility FOREIGN KEY (HomeFacCode) REFERENCES tblFacility (FacCode)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblMemberPosition (
        PosID INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        MemberNo VARCHAR(20) NOT NULL,
        FacCode VARCHAR(12) NOT NULL,
        PosTitle VARCHAR(100) NOT NULL,
        StartDate DATE NULL,
        EndDate DATE NULL,
        IsPrimary TINYINT(1) NOT NULL DEFAULT 0,
        updated_at DATETIME NOT NULL,
        KEY ix_position_updated (updated_at, PosID),
        KEY ix_position_member (MemberNo),
        CONSTRAINT fk_position_member FOREIGN KEY (MemberNo) REFERENCES tblMember (MemberNo),
        CONSTRAINT fk_position_facility FOREIGN KEY (FacCode) REFERENCES tblFacility (FacCode)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
]

SQLITE = [
    """CREATE TABLE tblRegion (
        RegionCode VARCHAR(10) NOT NULL PRIMARY KEY,
        RegionName VARCHAR(100) NOT NULL,
        updated_at DATETIME NOT NULL
    )""",
    """CREATE TABLE tblFacility (
        FacID INTEGER PRIMARY KEY AUTOINCREMENT,
        FacCode VARCHAR(12) NOT NULL UNIQUE,
        FacName VARCHAR(150) NOT NULL,
        RegionCode VARCHAR(10) NULL REFERENCES tblRegion (RegionCode),
        City VARCHAR(80) NULL,
        StateCd CHAR(2) NULL,
        updated_at DATETIME NOT NULL
    )""",
    """CREATE TABLE tblMember (
        MemberID INTEGER PRIMARY KEY AUTOINCREMENT,
        MemberNo VARCHAR(20) NOT NULL UNIQUE,
        FirstName VARCHAR(60) NULL,
        LastName VARCHAR(60) NULL,
        EmailAddr VARCHAR(254) NULL,
        PhoneNo VARCHAR(30) NULL,
        MbrStatus VARCHAR(20) NULL,
        HomeFacCode VARCHAR(12) NULL REFERENCES tblFacility (FacCode),
        HireDate DATE NULL,
        updated_at DATETIME NOT NULL
    )""",
    "CREATE INDEX ix_member_updated ON tblMember (updated_at, MemberID)",
    """CREATE TABLE tblMemberPosition (
        PosID INTEGER PRIMARY KEY AUTOINCREMENT,
        MemberNo VARCHAR(20) NOT NULL REFERENCES tblMember (MemberNo),
        FacCode VARCHAR(12) NOT NULL REFERENCES tblFacility (FacCode),
        PosTitle VARCHAR(100) NOT NULL,
        StartDate DATE NULL,
        EndDate DATE NULL,
        IsPrimary TINYINT(1) NOT NULL DEFAULT 0,
        updated_at DATETIME NOT NULL
    )""",
    "CREATE INDEX ix_position_updated ON tblMemberPosition (updated_at, PosID)",
]

# Columns written by the builders, in order (``INSERT INTO t (...) VALUES (...)``).
COLUMNS = {
    "tblRegion": ("RegionCode", "RegionName", "updated_at"),
    "tblFacility": ("FacCode", "FacName", "RegionCode", "City", "StateCd", "updated_at"),
    "tblMember": (
        "MemberNo",
        "FirstName",
        "LastName",
        "EmailAddr",
        "PhoneNo",
        "MbrStatus",
        "HomeFacCode",
        "HireDate",
        "updated_at",
    ),
    "tblMemberPosition": ("MemberNo", "FacCode", "PosTitle", "StartDate", "EndDate", "IsPrimary", "updated_at"),
}


def insert_sql(table: str, *, placeholder: str) -> str:
    """``INSERT`` for ``executemany``: ``placeholder`` is ``%s`` (MySQLdb) or ``?`` (sqlite3)."""
    columns = COLUMNS[table]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))})"
