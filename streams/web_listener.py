"""The worker's web server (metrics, health, POST /mentions) on a socket bound before Kafka.

Faust binds its web server only once the worker has started joining Kafka, and exits with a
traceback when the port is taken. Probing the port first left a race: two workers started
together both passed the probe, and one of them still died that way. The worker now binds
and listens at once, refuses a taken port in one line, and hands the socket to Faust.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.web import BaseSite, SockSite
from faust.web.drivers.aiohttp import Web

from streams.errors import ConfigError


def bind_web_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ConfigError naming the setting when it cannot be."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(
            f"STORMVARSEL_WEB_HOST: cannot resolve {host!r} ({exc.strerror or exc})"
        ) from None
    family, kind, proto, _name, address = addresses[0]
    listener = socket.socket(family, kind, proto)
    try:
        # As aiohttp binds (SO_REUSEADDR), so a port in TIME_WAIT is not refused.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    """Faust's aiohttp web driver, serving on a socket bound beforehand."""

    def __init__(self, app: Any, listener: socket.socket, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._listener = listener

    def _create_site(self) -> BaseSite:
        return SockSite(self._runner, self._listener, ssl_context=self.app.conf.web_ssl_context)
