"""Serving the HTTP API for ``run`` and ``demo``: the listening socket taken before the hub
starts, the console's URL, the access control, and uvicorn until a signal."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable


def base_url(host: str, port: int) -> str:
    """The API's URL as a browser on this machine reaches it (a wildcard host as loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def console_url(host: str, port: int, token: str | None) -> str:
    """The console's URL; with a token, signed in through the fragment (never sent to servers)."""
    return f"{base_url(host, port)}/console/" + (f"#token={token}" if token else "")


def authenticator(settings: object, plant: object) -> object:
    """The API's access control for ``settings`` and the plant's enterprises."""
    from safety_hub.api.auth import Authenticator
    from safety_hub.registry import Plant

    assert isinstance(plant, Plant)
    return Authenticator.from_settings(settings, plant.enterprises)


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, bound as uvicorn binds (``SO_REUSEADDR``: a port
    left in TIME_WAIT is free, one another program listens on is not). Raises ``OSError``."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def api_port_chosen(args: argparse.Namespace) -> bool:
    """Did the user choose the API port (``--api-port`` or the variable, in any case)?"""
    return args.api_port is not None or any(
        name.upper() == "SAFETY_HUB_API_PORT" for name in os.environ
    )


def api_listener(host: str, port: int, *, any_port_if_taken: bool) -> socket.socket | None:
    """The API's socket, before anything else starts; None after printing why not (one line
    naming the port and how to choose another)."""
    try:
        return listen(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and any_port_if_taken:
            return api_listener(host, 0, any_port_if_taken=False)
        if exc.errno == errno.EADDRINUSE:
            problem = f"API port {port} on {host} is taken by another program"
        else:
            problem = f"cannot listen on {host}:{port} ({exc.strerror or exc})"
        print(
            f"safety-hub: {problem}; choose a free port with --api-port N or SAFETY_HUB_API_PORT=N",
            file=sys.stderr,
        )
        return None


def serve(
    hub: object,
    listener: socket.socket,
    on_started: Callable[[Callable[[], None]], None] | None = None,
    auth: object = None,
) -> None:
    """Serve the API on ``listener`` until a signal (or the stop function that ``on_started``
    gets) ends it; ``on_started`` runs, in its own thread, once the API answers."""
    import uvicorn

    from safety_hub.api.app import create_app
    from safety_hub.api.auth import Authenticator
    from safety_hub.api.events import LiveEvents
    from safety_hub.runtime.hub import Hub

    assert isinstance(hub, Hub)
    assert auth is None or isinstance(auth, Authenticator)
    app = create_app(hub, auth=auth)
    events: LiveEvents = app.state.events

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            events.close()  # open event streams end, so the graceful shutdown does not wait
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = Server(config)
    served = threading.Event()

    def request_exit() -> None:
        server.should_exit = True

    def when_serving() -> None:
        assert on_started is not None
        # uvicorn sets `started` once the hub has started and the socket is served
        while not server.started:
            if served.wait(0.05):
                return  # it never started (the hub failed to start): no banner
        on_started(request_exit)

    if on_started is not None:
        threading.Thread(target=when_serving, name="api-started", daemon=True).start()
    # uvicorn re-raises a caught SIGTERM once it has shut down gracefully; with this handler in
    # place that re-raise is a no-op, so a graceful stop exits 0 as service managers expect.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[listener])
    finally:
        served.set()
        listener.close()
