"""Cronhouse's URLs plus the reference views of bench/api_trigger.py.

``/bench/trivial`` is the goal's reference: a Django view that does nothing. The two below
measure the floor under it, what any trigger must at least do to keep its answer's promise
(the run committed before the 202): one PostgreSQL round trip, and one durable one-row INSERT
through the same connection settings. If even those stay under half the trivial view, no
trigger design that commits per request reaches the goal on that machine.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

FLOOR_TABLE = "bench_floor"


def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


def _raw_cursor():
    # The kept connection's own psycopg cursor, as jobs/trigger_sql.py uses it: through Django's
    # cursor() every request would first pay CONN_HEALTH_CHECKS' SELECT 1, which the trigger skips.
    connection.ensure_connection()
    return connection.connection.cursor()


def round_trip(request):
    with _raw_cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return HttpResponse("ok", content_type="text/plain")


@csrf_exempt
def durable_insert(request):
    with _raw_cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (at) VALUES (now())")  # autocommit: one durable commit
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/trivial", trivial),
    path("bench/round-trip", round_trip),
    path("bench/durable-insert", durable_insert),
    path("", include("config.urls")),
]
