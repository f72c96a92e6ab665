"""A client that stops sending (or reading) cannot hold a web thread for long.

gunicorn's threads read a request body as the application asks for it, on a socket with no
timeout: a client that promises ``Content-Length: 1000`` and sends nothing would hold the thread
until it hangs up. This middleware, first in the list, gives the connection a per-operation
timeout (``WEB_CLIENT_TIMEOUT_SECONDS``) before anything reads the body, so such a request
ends with an error answer (400 from the API; 403 from a CSRF-checked form) and its connection is
closed. gunicorn hands its socket to the application as ``environ["gunicorn.socket"]``; other
servers (runserver, the test client) are left alone.

This bounds silence, not a trickle of one byte every few seconds, nor slow headers (read before
Django runs): on the internet, put a buffering reverse proxy in front (docs/operations.md).
"""

from __future__ import annotations

from django.conf import settings


def client_timeout_middleware(get_response):
    def middleware(request):
        connection = request.META.get("gunicorn.socket")
        if connection is not None:
            connection.settimeout(settings.WEB_CLIENT_TIMEOUT_SECONDS)
        return get_response(request)

    return middleware
