"""The worker's web server (metrics, health, POST /mentions) on a socket bound before Kafka.

Faust binds its web server only once the worker has started joining Kafka, and exits with a
traceback when the port is taken. Probing the port first left a race: two workers started
together both passed the probe, and one of them still died that way. The worker now binds
and listens at once, refuses a taken port in one line, and hands the socket to Faust.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import resource
import socket
import time
from dataclasses import dataclass
from typing import Any

from aiohttp.web import AppRunner, BaseSite, SockSite
from faust.web.drivers.aiohttp import Web

from streams.errors import ConfigError
from streams.log_setup import get_logger

log = get_logger(__name__)


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


@dataclass(frozen=True)
class WebLimits:
    """How long a client may take, and how many may be connected at once.

    aiohttp's keep-alive timer runs from the moment a connection is accepted until a whole request
    head has arrived, and again after each response, and bytes trickled in do not extend it: it
    is the deadline for the request's headers as well as for an idle connection (aiohttp's
    default is an hour, so a client that never finished its headers held a socket that long).
    The body has its own deadline, in ``POST /mentions`` (:func:`streams.http_ingest.read_limited`).
    """

    read_timeout_s: float = 30.0
    max_connections: int = 1000


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered to a third of the open-files limit: a flood of connections must be
    answered 503 before ``accept`` fails for want of file handles (Kafka's clients, the state
    store and the log need theirs too)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return wanted
    return max(8, min(wanted, soft // 3))


def _busy_response(cap: int) -> bytes:
    body = json.dumps(
        {
            "error": "busy",
            "message": f"the worker has {cap} connections open (STORMVARSEL_WEB_MAX_CONNECTIONS); "
            f"try again in {BUSY_RETRY_AFTER_S} s",
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {BUSY_RETRY_AFTER_S}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


#: Seconds a client refused for too many connections is asked to wait.
BUSY_RETRY_AFTER_S = 1
#: How long a refused connection stays open so the client reads the 503 (closing at once, with
#: its request unread, would reset the connection and lose the answer).
_BUSY_LINGER_S = 1.0
_busy_logged_at = -math.inf
#: asyncio's default TLS handshake timeout.
_HANDSHAKE_S = 60.0


class _Busy(asyncio.Protocol):
    """Answers one connection over the cap with a 503 and closes it."""

    def __init__(self, response: bytes) -> None:
        self._response = response
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._response)
        self._timer = asyncio.get_running_loop().call_later(_BUSY_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request is not read

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


class _CappedSockSite(SockSite):
    """aiohttp's SockSite, answering connections beyond ``max_connections`` with a 503."""

    def __init__(self, runner: AppRunner, sock: socket.socket, cap: int, **kwargs: Any) -> None:
        super().__init__(runner, sock, **kwargs)
        self._cap = cap
        self._busy = _busy_response(cap)

    async def start(self) -> None:
        await BaseSite.start(self)
        server = self._runner.server
        assert server is not None

        # asyncio accepts a burst of connections and makes their protocols before any of them
        # is connected (and so counted by aiohttp): those made but not yet running count too,
        # until they run, or for a TLS handshake's time at most (a failed one never runs). One
        # that ran and is gone already has neither a task nor a manager any more.
        starting: dict[Any, float] = {}

        def protocol() -> asyncio.BaseProtocol:
            global _busy_logged_at
            now = time.monotonic()
            for handler, made in list(starting.items()):
                running = getattr(handler, "_task_handler", None) is not None
                gone = getattr(handler, "_manager", server) is None
                if running or gone or now - made > _HANDSHAKE_S:
                    del starting[handler]
            if len(server.connections) + len(starting) < self._cap:
                handler = server()
                starting[handler] = now
                return handler
            if now - _busy_logged_at >= 30:  # one line per 30 s, however many are refused
                _busy_logged_at = now
                log.warning(
                    "web.connections_full",
                    max_connections=self._cap,
                    hint="answered 503; raise STORMVARSEL_WEB_MAX_CONNECTIONS if this is "
                    "ordinary traffic",
                )
            return _Busy(self._busy)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
        )


class PreboundWeb(Web):
    """Faust's aiohttp web driver, serving on sockets bound beforehand, with time limits and a
    cap on connections (:class:`WebLimits`)."""

    def __init__(
        self,
        app: Any,
        listeners: list[socket.socket],
        limits: WebLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._listeners = listeners
        self.limits = limits or WebLimits()
        timeout_s = self.limits.read_timeout_s
        self._runner = AppRunner(
            self.web_app,
            access_log=None,
            keepalive_timeout=timeout_s,
            # After an answer given before the body was read (401, 413, 408), the rest of the
            # body is read and dropped for at most this long (aiohttp's default is 10 s).
            lingering_time=min(10.0, timeout_s),
            # Bodies are taken as sent: aiohttp unpacked gzip and deflate on the event loop,
            # also while it dropped them after an early answer (POST /mentions refuses any
            # Content-Encoding with 415).
            auto_decompress=False,
        )

    async def start_server(self) -> None:
        await self._runner.setup()
        cap = connection_cap(self.limits.max_connections)
        for listener in self._listeners:
            site = _CappedSockSite(
                self._runner, listener, cap, ssl_context=self.app.conf.web_ssl_context
            )
            await site.start()
