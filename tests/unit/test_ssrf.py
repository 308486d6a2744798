"""The SSRF guard's rule: which addresses outgoing calls may reach (backend/ssrf.py)."""

import ipaddress

import pytest

from backend import ssrf
from backend.config import Settings

NONE_ALLOWED: list[ssrf.IPNetwork] = []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "unique-local"),
        ("fc00::1", "unique-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - the address under test
        ("::", "unspecified"),
    ],
)
def test_each_internal_range_is_refused(address: str, reason: str) -> None:
    assert ssrf.refusal(ipaddress.ip_address(address), NONE_ALLOWED) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "172.32.0.1", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert ssrf.refusal(ipaddress.ip_address(address), NONE_ALLOWED) is None


def test_an_allowed_network_opens_just_that_range() -> None:
    allowed = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.20.0.0/16")]
    assert ssrf.refusal(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert ssrf.refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert ssrf.refusal(ipaddress.ip_address("10.20.3.4"), allowed) is None
    assert ssrf.refusal(ipaddress.ip_address("10.21.3.4"), allowed) == "private"
    assert ssrf.refusal(ipaddress.ip_address("::1"), allowed) == "loopback"


def test_literal_refusal_reads_url_hosts_and_ignores_names() -> None:
    assert "link-local" in (ssrf.literal_refusal("169.254.169.254", NONE_ALLOWED) or "")
    assert "loopback" in (ssrf.literal_refusal("[::1]", NONE_ALLOWED) or "")
    assert ssrf.literal_refusal("metadata.internal", NONE_ALLOWED) is None
    assert ssrf.literal_refusal(None, NONE_ALLOWED) is None


def test_allowed_networks_setting_is_comma_separated_cidrs() -> None:
    settings = Settings(http_task_allowed_networks=" 127.0.0.0/8, fd00::/8 ")  # type: ignore[arg-type]
    assert settings.http_task_allowed_networks == [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    ]
    assert Settings(http_task_allowed_networks="").http_task_allowed_networks == []  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="network"):
        Settings(http_task_allowed_networks="127.0.0.1/8")  # type: ignore[arg-type]
