"""The worker's web server (metrics, health, POST /mentions) on a socket bound before Kafka.

Faust binds its web server only once the worker has started joining Kafka, and exits with a
traceback when the port is taken. Probing the port first left a race: two workers started
together both passed the probe, and one of them still died that way. The worker now binds
and listens at once, refuses a taken port in one line, and hands the socket to Faust.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from aiohttp.web import SockSite
from faust.web.drivers.aiohttp import Web

from streams.errors import ConfigError


def bind_web_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address of ``host`` (``localhost`` may be 127.0.0.1 and ::1,
    as aiohttp would bind them); ConfigError naming the setting when one cannot be bound."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(
            f"STORMVARSEL_WEB_HOST: cannot resolve {host!r} ({exc.strerror or exc})"
        ) from None
    listeners: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _name, address in addresses:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            listeners.append(_listen(family, kind, proto, address, host, port))
    except ConfigError:
        for listener in listeners:
            listener.close()
        raise
    return listeners


def _listen(
    family: int, kind: int, proto: int, address: Any, host: str, port: int
) -> socket.socket:
    listener: socket.socket | None = None
    try:
        listener = socket.socket(family, kind, proto)
        # As aiohttp binds (SO_REUSEADDR), so a port in TIME_WAIT is not refused.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # So that [::] and 0.0.0.0 (or ::1 and 127.0.0.1) can both be bound.
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(address)
        listener.listen(128)  # from now on a second worker's bind fails
    except OSError as exc:
        if listener is not None:
            listener.close()
        raise ConfigError(_bind_error(exc, family, address, host, port)) from None
    listener.setblocking(False)
    return listener


def _bind_error(exc: OSError, family: int, address: Any, host: str, port: int) -> str:
    """The one-line refusal, naming the setting at fault: only a port in use (or one below 1024)
    is the port's fault; an address this machine does not have, or IPv6 switched off, is the
    host's (every bind failure used to blame the port)."""
    ip = address[0] if isinstance(address, tuple) else str(address)
    where = f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
    failed = f"cannot listen on {where} ({exc.strerror or exc})"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"STORMVARSEL_WEB_PORT: {failed}; another program (or worker) holds it: stop it, or "
            "give this worker another STORMVARSEL_WEB_PORT"
        )
    if exc.errno == errno.EACCES:
        return (
            f"STORMVARSEL_WEB_PORT: {failed}; a port below 1024 needs privileges: give this "
            "worker a higher STORMVARSEL_WEB_PORT"
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        which = ip if ip == host else f"{host!r} resolves to {ip}, which"
        ipv6 = " (or IPv6 is not available here)" if family == socket.AF_INET6 else ""
        return (
            f"STORMVARSEL_WEB_HOST: {failed}; {which} is not an address of this machine{ipv6}: "
            "set STORMVARSEL_WEB_HOST to one of its addresses (127.0.0.1, or 0.0.0.0 for all)"
        )
    return f"STORMVARSEL_WEB_HOST/STORMVARSEL_WEB_PORT: {failed}"


class PreboundWeb(Web):
    """Faust's aiohttp web driver, serving on sockets bound beforehand."""

    def __init__(self, app: Any, listeners: list[socket.socket], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._listeners = listeners

    async def start_server(self) -> None:
        await self._runner.setup()
        for listener in self._listeners:
            site = SockSite(self._runner, listener, ssl_context=self.app.conf.web_ssl_context)
            await site.start()
