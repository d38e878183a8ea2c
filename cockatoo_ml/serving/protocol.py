"""Requests that Hypercorn turns down before the app sees them: explained, logged and counted.

Hypercorn 0.18's HTTP/1.1 protocol (``hypercorn/protocol/h11.py``) answers what h11 cannot parse (a bad request
line or header, a negative Content-Length, no Host: 400; an unsupported Transfer-Encoding: 501) and request lines
plus headers over ``h11_max_incomplete_size`` (16 KB: 431) in ``H11Protocol._send_error_response``, with an empty
body. A client whose request line and headers do not arrive within the keep-alive timeout (``--keep-alive``,
``COCKATOO_HEADER_TIMEOUT_S`` in start_api.sh) is cut off without a word. None of it reaches the ASGI app and
Hypercorn has no hook for it, so ``install()`` replaces ``_send_error_response`` and wraps ``handle`` once per
process: every such rejection gets a JSON ``{"error": ...}`` saying what was wrong (408 for the header timeout),
one escaped line on the access log, and a count in the serving app's ``cockatoo_protocol_rejections_total``.

An answer the app sends before the request's body has all arrived (a 404 or 401 decided from the request line
and headers) makes Hypercorn close the connection afterwards (``H11Protocol._maybe_recycle``), without saying so:
a client that reuses the connection for its next request, as HTTP/1.1 lets it, gets no answer at all
(``RemoteDisconnected`` in ``requests``; it lost three of 32 clients in the soak benchmark). The wrapped
``_send_h11_event`` adds ``connection: close`` to such an answer (RFC 9112 section 9.6).

These are Hypercorn internals, so any Hypercorn but 0.18.x stops start-up (a ConfigError) instead of silently no
longer counting; tests/serving/test_protocol.py checks a new version before its pin in requirements.txt moves.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import logging
import re
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import h11
from hypercorn.events import Closed, Event
from hypercorn.protocol.h11 import H11Protocol

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.logging import escape_for_log

SUPPORTED_HYPERCORN = "0.18."
# The Quart app's extensions hold the callback that counts its rejections (a connection knows its app).
LISTENER_KEY = "cockatoo_protocol_rejections"
HEADER_TIMEOUT_REASON = "request line and headers not received in time"

# The H11Protocol methods install() replaces or wraps, with the parameters they were written against.
PATCHED_METHODS = {
    "_send_error_response": ["self", "status_code"],
    "handle": ["self", "event"],
    "_send_h11_event": ["self", "event"],
}

RejectionListener = Callable[[int, str], None]
access_log = logging.getLogger("cockatoo_ml.access")
_installed = False


def install() -> None:
    """Patch Hypercorn's HTTP/1.1 protocol once (idempotent); refuse a Hypercorn this was not written for."""
    global _installed
    if _installed:
        return
    version = importlib.metadata.version("hypercorn")
    if not version.startswith(SUPPORTED_HYPERCORN) or any(
        list(inspect.signature(getattr(H11Protocol, name, _missing)).parameters) != parameters
        for name, parameters in PATCHED_METHODS.items()
    ):
        raise ConfigError(
            f"hypercorn {version} is not supported: cockatoo_ml/serving/protocol.py hooks into Hypercorn "
            f"{SUPPORTED_HYPERCORN}x internals to log and count the requests it rejects; install the version "
            "pinned in requirements.txt"
        )
    handle = H11Protocol.handle
    send_h11_event = H11Protocol._send_h11_event

    async def send_error_response(self: H11Protocol, status_code: int) -> None:
        # Called only from the `except h11.RemoteProtocolError` in _handle_events: that error is the reason.
        error = sys.exception()
        reason = str(error) if isinstance(error, h11.RemoteProtocolError) else HTTPStatus(status_code).phrase
        await _reject(self, status_code, reason)

    async def handle_with_header_timeout(self: H11Protocol, event: Event) -> None:
        # The server closes the connection (keep-alive timer) while a request's head is still incomplete.
        if isinstance(event, Closed) and _head_incomplete(self.connection):
            await _reject(self, 408, HEADER_TIMEOUT_REASON)
        await handle(self, event)

    async def send_h11_event_announcing_close(self: H11Protocol, event: Any) -> None:
        # Hypercorn will close this connection once the answer is out (the request body was not all read).
        if isinstance(event, h11.Response) and self.connection.their_state is h11.SEND_BODY:
            event = _with_connection_close(event)
        await send_h11_event(self, event)

    H11Protocol._send_error_response = send_error_response  # type: ignore[method-assign]
    H11Protocol.handle = handle_with_header_timeout  # type: ignore[method-assign]
    H11Protocol._send_h11_event = send_h11_event_announcing_close  # type: ignore[method-assign]
    _installed = True


def _missing() -> None:
    """Stands in for a method this Hypercorn does not have (its parameters never match)."""


def _with_connection_close(response: h11.Response) -> h11.Response:
    headers = [(name, value) for name, value in response.headers.raw_items() if name.lower() != b"connection"]
    return h11.Response(
        status_code=response.status_code,
        headers=[*headers, (b"connection", b"close")],
        reason=response.reason,
        http_version=response.http_version,
    )


def reason_label(reason: str) -> str:
    """h11's message without the client's bytes it quotes (``illegal request line: bytearray(b'...')``): a
    label of bounded cardinality."""
    return re.split(r":\s*(?:bytearray\(|b['\"])", reason, maxsplit=1)[0][:80]


def explain(status: int, reason: str, config: Any) -> str:
    """What the client did wrong and what to do instead."""
    label = reason_label(reason)
    if status == 431:
        return (
            f"the request line and headers are over {config.h11_max_incomplete_size} bytes: send a shorter URL "
            "and fewer or smaller headers"
        )
    if status == 408:
        return (
            f"the request line and headers did not arrive within {config.keep_alive_timeout:g}s "
            "(COCKATOO_HEADER_TIMEOUT_S; Hypercorn's --keep-alive): send them at once"
        )
    if status == 501:
        return f"{label}: send the body with Content-Length or Transfer-Encoding: chunked"
    return f"malformed HTTP request ({label}): send a valid HTTP/1.1 request"


def _head_incomplete(connection: Any) -> bool:
    """Part of a request line or headers has arrived, the rest not (and the client has not closed)."""
    if not isinstance(connection, h11.Connection):  # a WebSocket connection
        return False
    received, client_closed = connection.trailing_data
    return (
        connection.their_state is h11.IDLE and connection.our_state is h11.IDLE and bool(received) and not client_closed
    )


async def _reject(protocol: H11Protocol, status: int, reason: str) -> None:
    client = protocol.client[0] if protocol.client else "-"
    access_log.info("%s - - %d rejected by Hypercorn: %s", client, status, escape_for_log(reason[:300]))
    app = getattr(protocol.app, "app", None)  # hypercorn's ASGIWrapper holds the Quart app
    listener: RejectionListener | None = getattr(app, "extensions", {}).get(LISTENER_KEY)
    if listener is not None:
        listener(status, reason_label(reason))
    body = json.dumps({"error": explain(status, reason, protocol.config)}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *protocol.config.response_headers("h11"),
    ]
    phrase = HTTPStatus(status).phrase.encode()
    await protocol._send_h11_event(h11.Response(status_code=status, headers=headers, reason=phrase))
    await protocol._send_h11_event(h11.Data(data=body))
    await protocol._send_h11_event(h11.EndOfMessage())
