"""The worker's web server (metrics, health, POST /mentions) on a socket bound before Kafka.

Faust binds its web server only once the worker has started joining Kafka, and exits with a
traceback when the port is taken. Probing the port first left a race: two workers started
together both passed the probe, and one of them still died that way. The worker now binds
and listens at once, refuses a taken port in one line, and hands the socket to Faust.
"""

from __future__ import annotations

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
    listener = socket.socket(family, kind, proto)
    try:
        # As aiohttp binds (SO_REUSEADDR), so a port in TIME_WAIT is not refused.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # So that [::] and 0.0.0.0 (or ::1 and 127.0.0.1) can both be bound.
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(address)
        listener.listen(128)  # from now on a second worker's bind fails
    except OSError as exc:
        listener.close()
        raise ConfigError(
            f"STORMVARSEL_WEB_PORT: cannot listen on {host}:{port} "
            f"({exc.strerror or exc}); another program (or worker) holds it: stop it, or "
            "give this worker another STORMVARSEL_WEB_PORT"
        ) from None
    listener.setblocking(False)
    return listener


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
