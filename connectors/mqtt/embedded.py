"""The embedded broker of local mode: a private Mosquitto on loopback.

Started only when ``SAFETY_HUB_MQTT_URL`` is unset. It prefers the configured port (1883) and
takes a free one when that is busy, so a machine that already runs a broker still gets a demo.
Persistence lives under the hub's data dir, so a restarted demo keeps its sessions; the queue
limits are raised far above Mosquitto's default of 1000 messages, past which it would drop
QoS 1 messages silently. ``message_size_limit`` refuses a payload over the hub's limit to its
sender (an MQTT 5 publisher gets a failure reason code), and ``max_packet_size`` disconnects a
client that sends a far larger packet before the broker holds it in memory. Its ACL lets any
client read and write anything, except that the hub's catch-all user (``EMBEDDED_CATCH_ALL_USER``)
is denied the registered enterprises' topics (acl.py), so the broker sends the catch-all no copy
of what their own sessions receive. Run as root, it keeps the user it was started as (Mosquitto
would switch to ``mosquitto``, who may not write the hub's data dir).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Collection
from pathlib import Path

from safety_hub.errors import BrokerError

log = logging.getLogger("connectors.mqtt.embedded")

EMBEDDED_CATCH_ALL_USER = "safety-hub-unregistered"
"""the hub's catch-all user on the embedded broker, whose ACL fences it off the registered
enterprises (unless ``SAFETY_HUB_MQTT_CATCH_ALL_USER`` names another)"""

_CONFIG = """\
# written by safety-hub: the embedded broker of local mode
listener {port} {host}
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 5
max_queued_messages 2000000
max_queued_bytes 0
max_inflight_messages 1000
set_tcp_nodelay true
message_size_limit {max_payload}
max_packet_size {max_packet}
persistent_client_expiration 7d
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
{acl}"""


def packet_limit(max_payload_bytes: int) -> int:
    """The largest MQTT packet carrying a payload of ``max_payload_bytes``: room for the longest
    topic MQTT allows (64 KiB) and the fixed header and properties."""
    return max_payload_bytes + 65_536 + 1024


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the broker goes when the hub goes, even after kill -9.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class EmbeddedBroker:
    def __init__(
        self,
        data_dir: Path,
        preferred_port: int = 1883,
        host: str = "127.0.0.1",
        max_payload_bytes: int = 1_048_576,
        fence: tuple[str, Collection[str]] | None = None,
    ) -> None:
        """``fence``: (the hub's catch-all user, the registered enterprises): an ACL that lets
        any client do anything but denies that user the registered enterprises' topics, so
        the broker sends the catch-all no copy of what their own sessions receive (acl.py)."""
        self.fence = fence
        self.data_dir = data_dir
        self.max_payload_bytes = max_payload_bytes
        self.host = host
        self.preferred_port = preferred_port
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        return shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        """Start the broker and wait until it takes connections; returns itself."""
        binary = self.binary()
        if binary is None:
            raise BrokerError(
                "embedded broker: the mosquitto program was not found; run `make setup` "
                "(installs the Debian package mosquitto) or set SAFETY_HUB_MQTT_URL"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.preferred_port
        if port == 0 or not _port_free(self.host, port):
            if port:
                log.warning(
                    "embedded broker: port %d is taken; using a free port instead",
                    port,
                )
            port = _free_port(self.host)
        self.port = port
        acl = ""
        if os.geteuid() == 0:
            # As root, Mosquitto would switch to user "mosquitto", who may not read or write
            # the hub's data dir: its persistence, log and ACL file.
            acl += f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        if self.fence is not None:
            from connectors.mqtt.acl import render_open_acl

            (self.data_dir / "acl").write_text(render_open_acl(*self.fence))
            acl += f"acl_file {self.data_dir}/acl\n"
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(
            _CONFIG.format(
                port=port,
                host=self.host,
                data=self.data_dir,
                max_payload=self.max_payload_bytes,
                max_packet=packet_limit(self.max_payload_bytes),
                acl=acl,
            )
        )
        self._proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
            # Its own process group: Ctrl-C in a terminal reaches the hub, which then stops the
            # broker after its clients; the broker is never gone first (no false outage alarm).
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise BrokerError(f"embedded broker: mosquitto exited at start: {err.strip()}")
            try:
                with socket.create_connection((self.host, port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise BrokerError(f"embedded broker: no answer on {self.host}:{port} in {timeout} s")
        log.info("embedded broker started", extra={"url": self.url})
        return self

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._proc = None
