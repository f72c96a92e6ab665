"""Every outbound HTTP connection of the project goes through the outbound-HTTP guard.

The project's modules (outside tests/ and bench/) are read with ``ast``: none but
``core/http_guard.py`` may make an HTTP client of its own (a ``requests.Session``, a
``requests.get/post/...`` call, ``urllib.request``, ``http.client``, ``httpx``, ``aiohttp`` or a
urllib3 pool). A module that did would reach loopback, private and metadata addresses and follow
redirects anywhere, unchecked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.nodb  # reads source files only

ROOT = Path(__file__).resolve().parents[3]
SKIPPED_DIRS = {"tests", "bench", ".venv", "node_modules", ".git"}
GUARD = Path("core/http_guard.py")
# Modules whose mere import means talking HTTP without the guard.
FORBIDDEN_MODULES = ("urllib.request", "http.client", "httpx", "aiohttp", "urllib3.poolmanager")
REQUESTS_CALLS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "session", "Session"}
URLLIB3_CALLS = {
    "request",
    "PoolManager",
    "ProxyManager",
    "HTTPConnectionPool",
    "HTTPSConnectionPool",
    "connection_from_url",
}


def project_modules() -> list[Path]:
    modules = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in SKIPPED_DIRS or relative == GUARD:
            continue
        modules.append(relative)
    return modules


def _forbidden_import(name: str) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in FORBIDDEN_MODULES)


class UnguardedHttp(ast.NodeVisitor):
    """Collects ``line: what`` for each way a module could talk HTTP past the guard."""

    def __init__(self) -> None:
        self.found: list[str] = []
        # Local names bound to the requests / urllib3 modules or to their client factories.
        self.aliases: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _forbidden_import(alias.name):
                self.found.append(f"{node.lineno}: import {alias.name}")
            if alias.name in ("requests", "urllib3"):
                self.aliases[alias.asname or alias.name] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if _forbidden_import(module) or _forbidden_import(full):
                self.found.append(f"{node.lineno}: from {module} import {alias.name}")
            elif (module == "requests" and alias.name in REQUESTS_CALLS) or (
                module.startswith("requests.") and alias.name == "Session"
            ):
                self.aliases[alias.asname or alias.name] = f"requests.{alias.name}"
            elif module.split(".")[0] == "urllib3" and alias.name in URLLIB3_CALLS:
                self.aliases[alias.asname or alias.name] = f"urllib3.{alias.name}"

    def visit_Call(self, node: ast.Call) -> None:
        target = self._called(node.func)
        if target:
            self.found.append(f"{node.lineno}: {target}(...)")
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            if self._called(base) == "requests.Session":
                self.found.append(f"{node.lineno}: class {node.name}(requests.Session)")
        self.generic_visit(node)

    def _called(self, func: ast.expr) -> str | None:
        if isinstance(func, ast.Name):
            return self.aliases.get(func.id) if "." in self.aliases.get(func.id, "") else None
        if isinstance(func, ast.Attribute):
            owner = _dotted(func.value)
            module = self.aliases.get(owner.split(".")[0]) if owner else None
            if module == "requests" and func.attr in REQUESTS_CALLS:
                return f"requests.{func.attr}"
            if module == "urllib3" and func.attr in URLLIB3_CALLS:
                return f"urllib3.{func.attr}"
        return None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (owner := _dotted(node.value)):
        return f"{owner}.{node.attr}"
    return None


def unguarded_http(source: str) -> list[str]:
    visitor = UnguardedHttp()
    visitor.visit(ast.parse(source))
    return visitor.found


def test_it_finds_every_project_module():
    modules = project_modules()
    assert Path("billing/services/settlements.py") in modules
    assert Path("notifications/webhooks.py") in modules
    assert GUARD not in modules and not any(m.parts[0] in ("tests", "bench") for m in modules)


def test_it_finds_no_http_client_outside_the_guard():
    offenders = {str(path): found for path in project_modules() if (found := unguarded_http((ROOT / path).read_text()))}
    assert offenders == {}, "HTTP outside core/http_guard.py; use core.http_guard.guarded_request"


@pytest.mark.parametrize(
    "source",
    [
        "import requests\nwith requests.Session() as s: s.get('http://x')",
        "import requests as r\nr.post('http://x')",
        "import requests\nrequests.request('GET', 'http://x')",
        "from requests import get\nget('http://x')",
        "from requests import Session as S\nS()",
        "from requests.sessions import Session\nSession()",
        "import requests\nclass Mine(requests.Session): pass",
        "import urllib.request\nurllib.request.urlopen('http://x')",
        "from urllib import request",
        "from urllib.request import urlopen",
        "import http.client",
        "from http import client",
        "import httpx",
        "import aiohttp",
        "import urllib3\nurllib3.PoolManager().request('GET', 'http://x')",
        "from urllib3 import PoolManager\nPoolManager()",
        "import urllib3\nurllib3.request('GET', 'http://x')",
    ],
)
def test_it_recognises_each_way_of_talking_http_past_the_guard(source):
    assert unguarded_http(source) != []


def test_it_leaves_the_guard_and_requests_exceptions_alone():
    source = (
        "import requests\nfrom core.http_guard import guarded_request\n"
        "try:\n    guarded_request('GET', 'https://x')\nexcept requests.RequestException:\n    pass\n"
    )
    assert unguarded_http(source) == []
