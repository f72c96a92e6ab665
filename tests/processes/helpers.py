"""Small helpers for the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import threading


def command_summary(output: str) -> dict:
    """The JSON summary a job command prints as its last stdout line (log lines may follow on stderr)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    raise AssertionError(f"no JSON summary in output:\n{output}")


def fresh(obj):
    obj.refresh_from_db()
    return obj


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def api_triggers_at_once(url: str, job_name: str, api_key: str, count: int) -> list:
    """``count`` POST /api/jobs/run of ``job_name``, released together by a barrier, each on its own
    connection; returns (status, body) per trigger, or ("error", the exception) where none came."""
    import requests

    gate = threading.Barrier(count)
    answers: list = [None] * count

    def fire(index: int) -> None:
        session = requests.Session()
        gate.wait()
        try:
            response = session.post(
                f"{url}/api/jobs/run",
                json={"job": job_name},
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=60,
            )
            answers[index] = (response.status_code, response.json())
        except requests.RequestException as exc:
            answers[index] = ("error", repr(exc))

    threads = [threading.Thread(target=fire, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers
