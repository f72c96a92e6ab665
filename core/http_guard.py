"""The outbound-HTTP guard: every request Cronhouse makes to a URL someone typed goes through here.

A staff user (or a compromised staff account) configures webhook URLs. Without a guard a URL
like ``http://169.254.169.254/latest/meta-data/`` or ``http://10.0.0.5:5432/`` would let them
reach the cloud metadata service or internal services from our network (SSRF). The guard:

1. allows only ``http`` and ``https`` URLs, and refuses known metadata host names;
2. resolves the host itself and refuses the request if ANY resolved address is loopback,
   private, link-local, multicast, reserved, unspecified, shared (CGNAT), a known cloud
   metadata address, or otherwise not globally routable (IPv4-mapped/NAT64/6to4 IPv6
   addresses are judged by the IPv4 address inside them);
3. connects to exactly the address it checked (the check happens inside urllib3's connection
   set-up, so a DNS answer that changes between check and connect cannot slip through), while
   TLS still verifies the certificate for the host name;
4. applies the same check to every redirect hop (a redirect to a refused address is refused
   before any request is sent to it), following at most ``JOBS_HTTP_MAX_REDIRECTS``; with
   ``cross_origin_redirects=False`` it follows only redirects to the same scheme, host and port
   and returns a redirect elsewhere as the response (requests drops ``Authorization`` on a
   cross-host redirect but keeps every other header, an API key among them);
5. ignores proxy environment variables (a proxy would connect on our behalf, unchecked);
6. always sets connect and read timeouts and reads at most ``max_body_bytes`` of the body.

``settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True`` lets 127.0.0.0/8 and ::1 through. It exists
for tests that run a receiver on loopback and is not read from the environment.
``settings.JOBS_HTTP_GUARD_LOOPBACK_PORTS`` lets loopback through on those ports only: the
embedded demo sets it to its own web server's port, where its stand-ins for Stripe and the API
providers answer (config/settings.py, "The embedded demo's stand-ins"); elsewhere it is empty.

Use ``guarded_request(...)`` (or ``guarded_httpx_client`` for a library that takes an httpx
client); it raises ``DestinationRefused`` (no request made) or a
``requests`` exception for network failures.

Step 3 overrides urllib3's ``HTTPConnection._new_conn`` (reading ``_dns_host``): urllib3 has no
public hook that resolves and connects in one step. This module and ``jobs/scheduling/beat.py`` are the only
places that use a library's private names; urllib3 is pinned exactly in requirements.txt and
tests/jobs/security/test_pinned_internals.py fails when an upgrade moves the hook.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

ALLOWED_SCHEMES = ("http", "https")
# Cloud metadata services that are reachable by name from inside an instance.
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
    }
)
# Metadata endpoints by address. Most are link-local or private anyway; Azure's wire server and
# Alibaba's metadata service sit in ranges that are easy to miss, so they are named explicitly.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0


class DestinationRefused(Exception):
    """The guard refused the URL or its address; nothing was sent to it."""


# --- checks -----------------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _loopback_allowed(port: int | None) -> bool:
    if getattr(settings, "JOBS_HTTP_GUARD_ALLOW_LOOPBACK", False):
        return True
    return port is not None and port in getattr(settings, "JOBS_HTTP_GUARD_LOOPBACK_PORTS", ())


def address_refusal(address: str, port: int | None = None) -> str | None:
    """Why ``address`` (to be reached on ``port``, when known) may not be contacted, or None if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if ip.version == 6 and (inner := _embedded_ipv4(ip)) is not None:
        reason = address_refusal(str(inner), port)
        return f"{reason} (inside {ip})" if reason else None
    if ip.is_loopback and _loopback_allowed(port):
        return None
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    for attribute, label in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attribute):
            return f"{ip} is a {label} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def url_check(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; DestinationRefused for anything else.

    A host that is an IP literal is checked here; a name is checked after resolution.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"Refused {url!r}: not a valid URL ({exc}).") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in ALLOWED_SCHEMES:
        raise DestinationRefused(f"Refused {url!r}: only http and https URLs are allowed.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise DestinationRefused(f"Refused {url!r}: the URL has no host.")
    if host in METADATA_HOSTNAMES:
        raise DestinationRefused(f"Refused {url!r}: {host} is a cloud metadata host.")
    port = port or (443 if scheme == "https" else 80)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if reason := address_refusal(host, port):
            raise DestinationRefused(f"Refused {url!r}: {reason}.")
    return scheme, host, port


def resolve_checked(host: str, port: int) -> list[tuple]:
    """getaddrinfo results for host:port, all allowed; DestinationRefused if any is not.

    One refused address refuses the name: a name that resolves to both a public and a
    private address is how DNS-rebinding attacks look.
    """
    if host.rstrip(".").lower() in METADATA_HOSTNAMES:
        raise DestinationRefused(f"Refused {host}: a cloud metadata host.")
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        if reason := address_refusal(sockaddr[0], port):
            raise DestinationRefused(f"Refused {host}: it resolves to {sockaddr[0]}, and {reason}.")
    return infos


# --- urllib3 / requests plumbing ---------------------------------------------------------


class _GuardedConnectionMixin:
    """Resolve, check and connect in one step, to the checked address (no second lookup)."""

    def _new_conn(self) -> socket.socket:
        try:
            infos = resolve_checked(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error: OSError | None = None
        for family, socktype, proto, _, sockaddr in infos:
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                return sock
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out ({self.timeout}s).") from exc
            except OSError as exc:
                sock.close()
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise DestinationRefused("Refused: the outbound-HTTP guard does not send through proxies.")

    def send(self, request, **kwargs):
        url_check(request.url)  # every hop, redirects included, before anything is sent
        return super().send(request, **kwargs)


class GuardedSession(requests.Session):
    """With an ``origin``, redirects are followed only within it (``get_redirect_target`` is
    requests' public hook deciding whether and where a response redirects)."""

    def __init__(self, origin: tuple[str, str, int] | None = None) -> None:
        super().__init__()
        self.origin = origin

    def get_redirect_target(self, resp):
        target = super().get_redirect_target(resp)
        if target and self.origin is not None and url_check(urljoin(resp.url, target)) != self.origin:
            return None  # not followed: the caller gets this redirect as the response
        return target


def guarded_session(origin: tuple[str, str, int] | None = None) -> requests.Session:
    session = GuardedSession(origin)
    session.trust_env = False  # no HTTP(S)_PROXY, no .netrc credentials
    session.max_redirects = settings.JOBS_HTTP_MAX_REDIRECTS
    adapter = GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def guarded_request(
    method: str,
    url: str,
    *,
    headers: dict | None = None,
    data: bytes | str | None = None,
    json=None,
    auth=None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    allow_redirects: bool = True,
    cross_origin_redirects: bool = True,
    max_body_bytes: int = 64 * 1024,
) -> requests.Response:
    """Send one request through the guard. ``response.content`` holds at most ``max_body_bytes``.

    ``cross_origin_redirects=False``: a redirect to another scheme, host or port is not followed
    (the response is that redirect), so headers carrying credentials never leave the origin.

    Raises DestinationRefused before sending anything to a refused URL or address (also
    for a redirect hop), or a requests.RequestException for network errors and timeouts.
    """
    origin = url_check(url)
    with guarded_session(None if cross_origin_redirects else origin) as session:
        try:
            response = session.request(
                method,
                url,
                headers=headers,
                data=data,
                json=json,
                auth=auth,
                timeout=(connect_timeout, read_timeout),
                allow_redirects=allow_redirects,
                stream=True,
            )
        except requests.exceptions.InvalidSchema as exc:  # a redirect to e.g. file:// or gopher://
            raise DestinationRefused(f"Refused a redirect from {url!r}: {exc}") from None
        try:
            body = response.raw.read(max_body_bytes, decode_content=True) or b""
        finally:
            response.close()
        response._content = body  # read (bounded) and released: .text / .json() work as usual
        return response


# --- httpx (clients that bring their own, as python-intercom does) ---------------------------
# The same guard for httpx, through public interfaces only: httpx's ``BaseTransport`` and
# httpcore's ``NetworkBackend``. TLS still verifies the certificate for the host name (httpcore
# passes it as the server name); redirects are not followed (each hop would need its check).
HTTPX_MAX_BODY_BYTES = 1 << 20
# What a guarded httpx client raises for a network failure (callers catch it without importing httpx).
HttpxTransportError = httpx.TransportError


class GuardedNetworkBackend(httpcore.NetworkBackend):
    """httpcore's documented network interface: resolve with ``resolve_checked`` (every address
    allowed, or nothing is sent) and connect to the checked address itself."""

    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            infos = resolve_checked(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        error: Exception | None = None
        for *_, sockaddr in infos:
            try:
                return self.inner.connect_tcp(
                    sockaddr[0],
                    sockaddr[1],
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"{host}: no address")

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise DestinationRefused("Refused: the outbound-HTTP guard does not connect to Unix sockets.")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport whose every request passes ``url_check`` and whose every connection is
    made by ``GuardedNetworkBackend``; the body is read up to ``HTTPX_MAX_BODY_BYTES``."""

    def __init__(self) -> None:
        self.pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedNetworkBackend()
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url_check(str(request.url))
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = self.pool.handle_request(core_request)
            try:
                body = httpx_bounded_read(response)
            finally:
                response.close()
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise httpx.TransportError(str(exc), request=request) from exc
        return httpx.Response(status_code=response.status, headers=response.headers, content=body, request=request)

    def close(self) -> None:
        self.pool.close()


def httpx_bounded_read(response: httpcore.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_stream():
        chunks.append(chunk[: HTTPX_MAX_BODY_BYTES - size])
        size += len(chunks[-1])
        if size >= HTTPX_MAX_BODY_BYTES:
            break
    return b"".join(chunks)


def guarded_httpx_client(*, timeout: float) -> httpx.Client:
    """An ``httpx.Client`` on the guarded transport: no proxies, no redirects, bounded waits."""
    return httpx.Client(
        transport=GuardedTransport(),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout, connect=5.0),
    )
