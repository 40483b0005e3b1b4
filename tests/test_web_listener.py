"""The worker's web sockets, bound before Kafka (see ``streams.web_listener``)."""

from __future__ import annotations

import socket

import pytest

from streams.errors import ConfigError
from streams.kafka_local import free_port
from streams.web_listener import bind_web_sockets


def _connects(family: int, host: str, port: int) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        return client.connect_ex((host, port)) == 0


def test_every_address_of_the_host_is_bound_as_aiohttp_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``localhost`` is 127.0.0.1 and ::1 on many machines (here only the first, so the
    resolver answers as theirs would; the sockets are real). Binding the first address alone
    would leave a scrape of the other refused."""
    port = free_port()
    real = socket.getaddrinfo

    def dual_stack(host: str, *args: object, **kwargs: object) -> list[object]:
        if host != "localhost":
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        tcp = socket.SOCK_STREAM, socket.IPPROTO_TCP, ""
        return [
            (socket.AF_INET6, *tcp, ("::1", port, 0, 0)),
            (socket.AF_INET, *tcp, ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", dual_stack)
    listeners = bind_web_sockets("localhost", port)
    try:
        assert sorted(s.getsockname()[0] for s in listeners) == ["127.0.0.1", "::1"]
        assert _connects(socket.AF_INET, "127.0.0.1", port)
        assert _connects(socket.AF_INET6, "::1", port)
    finally:
        for listener in listeners:
            listener.close()


def test_a_taken_port_is_refused_and_nothing_stays_bound() -> None:
    port = free_port()
    first = bind_web_sockets("127.0.0.1", port)
    try:
        with pytest.raises(
            ConfigError, match=r"^STORMVARSEL_WEB_PORT: cannot listen on 127\.0\.0\.1:"
        ):
            bind_web_sockets("127.0.0.1", port)
    finally:
        for listener in first:
            listener.close()
    again = bind_web_sockets("127.0.0.1", port)  # free again once closed
    for listener in again:
        listener.close()


def test_an_unknown_host_names_the_setting() -> None:
    with pytest.raises(
        ConfigError, match=r"^STORMVARSEL_WEB_HOST: cannot resolve 'no\.such\.host\.invalid'"
    ):
        bind_web_sockets("no.such.host.invalid", free_port())


def test_an_address_this_machine_does_not_have_names_the_host_not_the_port() -> None:
    """Every bind failure blamed STORMVARSEL_WEB_PORT ("another program holds it"), also for a
    host that is not an address of this machine (EADDRNOTAVAIL)."""
    with pytest.raises(ConfigError) as raised:
        bind_web_sockets("192.0.2.1", free_port())  # TEST-NET-1: nobody's address
    message = str(raised.value)
    assert message.startswith("STORMVARSEL_WEB_HOST: cannot listen on 192.0.2.1:")
    assert "192.0.2.1 is not an address of this machine" in message
    assert "another program" not in message and "STORMVARSEL_WEB_PORT" not in message


def test_a_host_resolving_to_an_ipv6_address_it_cannot_bind_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``localhost`` mapped to an IPv6 address in a container without IPv6: the host is at fault,
    and the IPv4 socket bound before it is closed again."""
    port = free_port()
    real = socket.getaddrinfo

    def ipv6_unavailable(host: str, *args: object, **kwargs: object) -> list[object]:
        if host != "localhost":
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        tcp = socket.SOCK_STREAM, socket.IPPROTO_TCP, ""
        return [
            (socket.AF_INET, *tcp, ("127.0.0.1", port)),
            (socket.AF_INET6, *tcp, ("2001:db8::1", port, 0, 0)),  # documentation prefix
        ]

    monkeypatch.setattr(socket, "getaddrinfo", ipv6_unavailable)
    with pytest.raises(ConfigError) as raised:
        bind_web_sockets("localhost", port)
    message = str(raised.value)
    assert message.startswith(f"STORMVARSEL_WEB_HOST: cannot listen on [2001:db8::1]:{port} (")
    assert "'localhost' resolves to 2001:db8::1" in message and "IPv6" in message
    for listener in bind_web_sockets("127.0.0.1", port):  # the IPv4 socket was closed
        listener.close()
