"""Runs `spoke-hub` as a child process for the compatibility suite.

Owns: starting the hub on its own loopback address with the standard ports (the
device SDK hard-codes 8883 and 443, so each hub gets its own 127.0.0.x), waiting
for readiness, reading the files the hub writes into its data directory, and
stopping it with SIGTERM.

Contract (shared/ARCHITECTURE.md, "spoke-hub"):
  spoke-hub --data-dir DIR --hostname NAME --bind ADDR --mqtt-port 8883 --https-port 443
  DIR/ca.pem, DIR/service.connstr; ready when both ports accept TCP connections;
  SIGTERM is a clean shutdown (exit status 0).

Invariants: a hub refuses to start when something already listens on its
address (a stale hub would make readiness meaningless); every started process
is stopped at the end of the session, and its log file is kept for reports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

READY_TIMEOUT_S = float(os.environ.get("SPOKE_COMPAT_READY_TIMEOUT", "60"))
STOP_TIMEOUT_S = 30.0

# Every hub started in this process, for failure reports (see conftest.py).
RUNNING: list["HubProcess"] = []
_RUNNING_LOCK = threading.Lock()


class HubError(RuntimeError):
    """The hub could not be started or stopped as the contract says."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class HubProcess:
    """One `spoke-hub` process bound to `ip`, with its data directory."""

    def __init__(
        self,
        binary: Path,
        data_dir: Path,
        ip: str,
        log_path: Path,
        mqtt_port: int = 8883,
        https_port: int = 443,
    ) -> None:
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.ip = ip
        # The host name clients use: the IP itself (the server certificate's
        # SANs include the bind address), so no /etc/hosts entry is needed.
        self.hostname = ip
        self.mqtt_port = mqtt_port
        self.https_port = https_port
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.exit_codes: list[int] = []
        self.ca_file = self.data_dir / "ca.pem"
        self.ca_pem = ""
        self.service_connstr = ""

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Starts the hub and returns once both ports accept connections."""
        if self.proc is not None and self.proc.poll() is None:
            raise HubError(f"hub on {self.ip} is already running")
        for port in (self.mqtt_port, self.https_port):
            if port_open(self.ip, port):
                raise HubError(
                    f"{self.ip}:{port} already accepts connections before spoke-hub started; "
                    "stop the stale process or choose another address (SPOKE_COMPAT_HUB_IP)"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.binary),
            "--data-dir", str(self.data_dir),
            "--hostname", self.hostname,
            "--bind", self.ip,
            "--mqtt-port", str(self.mqtt_port),
            "--https-port", str(self.https_port),
        ]
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        log.write(f"\n===== start: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        finally:
            log.close()
        with _RUNNING_LOCK:
            if self not in RUNNING:
                RUNNING.append(self)
        self._wait_ready()
        self.ca_pem = self.ca_file.read_text()
        self.service_connstr = (self.data_dir / "service.connstr").read_text().strip()
        if not self.service_connstr.startswith(f"HostName={self.hostname};"):
            raise HubError(
                f"service.connstr does not name HostName={self.hostname}: {self.service_connstr!r}"
            )

    def _wait_ready(self) -> None:
        """Readiness polling: connect attempts against both ports until a deadline."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = {self.mqtt_port, self.https_port}
        while pending:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                raise HubError(
                    f"spoke-hub exited with status {code} before it was ready\n{self.log_tail()}"
                )
            pending = {p for p in pending if not port_open(self.ip, p, timeout=0.2)}
            if not pending:
                break
            if time.monotonic() > deadline:
                raise HubError(
                    f"spoke-hub on {self.ip} not ready after {READY_TIMEOUT_S:.0f} s "
                    f"(ports not accepting: {sorted(pending)})\n{self.log_tail()}"
                )
            time.sleep(0.05)
        for name in ("ca.pem", "service.connstr"):
            if not (self.data_dir / name).is_file():
                raise HubError(f"spoke-hub is ready but {self.data_dir / name} is missing")

    def stop(self) -> int:
        """Sends SIGTERM and waits; returns the exit status (kills and raises on a hang)."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise HubError(
                    f"spoke-hub on {self.ip} did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM"
                )
        self.exit_codes.append(proc.returncode)
        return proc.returncode

    def kill(self) -> None:
        """Kills the hub with SIGKILL (a crash: nothing gets to run on the way out)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()

    def restart(self) -> int:
        """Stops the hub (SIGTERM) and starts it again on the same data directory.

        Returns the exit status of the stopped process.
        """
        code = self.stop()
        self.start()
        return code

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- diagnostics -----------------------------------------------------------

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"
