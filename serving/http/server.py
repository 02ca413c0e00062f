"""uvicorn with a drain step: SIGTERM lets requests already sent on open connections finish.

uvicorn's own shutdown closes every connection that is between two requests at
that instant, so a request a client has just written on a keep-alive connection
is lost (the client sees a reset). :class:`DrainingServer` first stops accepting
connections and, for up to ``drain_seconds``, keeps answering on the open ones
with ``Connection: close`` (the app's ``state.draining`` flag; see
:mod:`serving.http.middleware`), so each client finishes its in-flight request and
then reconnects elsewhere; then uvicorn's graceful shutdown runs as usual.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger(__name__)


def _fastapi_app(app: Any) -> FastAPI | None:
    """The FastAPI app under uvicorn's wrapper middlewares (if any)."""
    for _ in range(10):
        if isinstance(app, FastAPI):
            return app
        app = getattr(app, "app", None)
    return None


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose shutdown drains open connections first."""

    drain_seconds: float = 2.0

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        app = _fastapi_app(self.config.loaded_app)
        if app is not None:
            app.state.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        open_before = len(self.server_state.connections)
        while self.server_state.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        logger.info(
            "drained %d of %d connections before shutdown",
            open_before - len(self.server_state.connections),
            open_before,
        )
        await super().shutdown(sockets=None)
