"""The outbound-HTTP guard refuses internal destinations before any byte is sent to them.

Every test here runs inside ``no_network``: a connection to a non-loopback address or a real
DNS lookup fails the test, so a broken guard cannot reach 10.0.0.1 or the metadata service.
"""

from __future__ import annotations

import pytest
import requests

from core.http_guard import DestinationRefused, address_refusal, guarded_request, url_check

pytestmark = pytest.mark.usefixtures("no_network")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.1.2.3:8080/x", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://240.0.0.1/", "reserved"),
        ("http://100.64.0.1/", "not a public"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[64:ff9b::a00:1]/", "private"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata host"),
        ("ftp://example.com/file", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http:///nohost", "no host"),
    ],
)
def test_it_refuses_internal_and_non_http_destinations_with_a_clear_error(url, reason, no_network):
    with pytest.raises(DestinationRefused, match=reason):
        guarded_request("POST", url, data=b"{}")
    assert no_network.connects == []
    assert no_network.lookups == []


def test_it_allows_public_addresses():
    for address in ("93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"):
        assert address_refusal(address) is None
    assert url_check("https://hooks.example.com/x") == ("https", "hooks.example.com", 443)


def test_it_refuses_a_name_that_resolves_to_a_private_address_without_connecting(no_network):
    no_network.resolve("internal.example.test", ["10.1.2.3"])
    with pytest.raises(DestinationRefused, match=r"resolves to 10\.1\.2\.3.*private"):
        guarded_request("POST", "http://internal.example.test/hook", data=b"{}")
    assert no_network.lookups == ["internal.example.test"]
    assert no_network.connects == []


def test_it_refuses_a_name_with_any_private_address_among_public_ones(no_network):
    no_network.resolve("mixed.example.test", ["93.184.216.34", "169.254.169.254"])
    with pytest.raises(DestinationRefused, match="169.254.169.254"):
        guarded_request("GET", "http://mixed.example.test/")
    assert no_network.connects == []


def test_it_refuses_loopback_unless_the_explicit_test_setting_allows_it(receiver, settings):
    with pytest.raises(DestinationRefused, match="loopback"):
        guarded_request("POST", receiver.url(), data=b"{}")
    assert receiver.requests == []

    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    assert guarded_request("POST", receiver.url(), data=b"{}").status_code == 200
    assert len(receiver.requests) == 1
    # The setting opens loopback only, never private or metadata addresses.
    with pytest.raises(DestinationRefused):
        guarded_request("GET", "http://10.0.0.1/")


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://10.0.0.1/internal", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://internal.example.test/", "resolves to 10.9.8.7"),
        ("file:///etc/passwd", "Refused"),
    ],
)
def test_it_refuses_a_redirect_to_an_internal_address_before_requesting_it(
    location, reason, receiver, allow_loopback, no_network
):
    no_network.resolve("internal.example.test", ["10.9.8.7"])
    receiver.route("/hop", 307, headers={"Location": location})
    with pytest.raises(DestinationRefused, match=reason):
        guarded_request("POST", receiver.url("/hop"), data=b"{}")
    assert [r.path for r in receiver.requests] == ["/hop"]
    assert all(address[0] == "127.0.0.1" for address in no_network.connects)


def test_it_follows_a_redirect_to_an_allowed_address(receiver, allow_loopback):
    receiver.route("/old", 308, headers={"Location": receiver.url("/new")})
    response = guarded_request("POST", receiver.url("/old"), data=b"payload")
    assert response.status_code == 200
    assert [(r.path, r.body) for r in receiver.requests] == [("/old", b"payload"), ("/new", b"payload")]


def test_it_connects_to_the_address_it_checked_even_if_dns_changes(receiver, allow_loopback, no_network):
    """DNS rebinding: the first answer is checked and used; a second lookup would say 10.0.0.1."""
    answers = iter([["127.0.0.1"]])
    no_network.resolve("rebind.example.test", lambda: next(answers, ["10.0.0.1"]))
    response = guarded_request("GET", f"http://rebind.example.test:{receiver.port}/hook")
    assert response.status_code == 200
    assert no_network.lookups == ["rebind.example.test"]
    assert [address[0] for address in no_network.connects] == ["127.0.0.1"]
    assert receiver.requests[0].headers["Host"] == f"rebind.example.test:{receiver.port}"


def test_it_ignores_proxy_environment_variables(receiver, allow_loopback, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("http_proxy", "http://10.0.0.1:3128")
    assert guarded_request("GET", receiver.url()).status_code == 200


def test_it_times_out_a_slow_receiver(receiver, allow_loopback):
    receiver.delay = 1.0
    with pytest.raises(requests.exceptions.ReadTimeout):
        guarded_request("POST", receiver.url(), data=b"{}", read_timeout=0.2)


def test_it_reads_at_most_max_body_bytes(receiver, allow_loopback):
    receiver.route("/big", 200, body=b"x" * 100_000)
    response = guarded_request("GET", receiver.url("/big"), max_body_bytes=1000)
    assert len(response.content) == 1000 and response.text == "x" * 1000
