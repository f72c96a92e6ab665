"""Imports point one way: domain apps -> notifications -> jobs; domain apps never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.nodb
ROOT = Path(__file__).resolve().parents[2]
DOMAIN_APPS = ("accounts", "billing")
# What each app may not import (migrations included: a moved model is named by string there).
FORBIDDEN = {
    "accounts": {"billing"},
    "billing": {"accounts"},
    "notifications": {"accounts", "billing"},
    "jobs": {"accounts", "billing", "notifications"},
}


def imported_top_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_it_finds_no_import_against_the_direction():
    wrong = []
    for app, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / app).rglob("*.py")):
            for package in imported_top_packages(path) & forbidden:
                wrong.append(f"{path.relative_to(ROOT)} imports {package}")
    assert wrong == []


def test_it_would_notice_a_wrong_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from billing.models import Lease\nimport accounts.services\n")
    assert imported_top_packages(module) == {"billing", "accounts"}
