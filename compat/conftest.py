"""Fixtures of the compatibility suite: spoke-hub driven by the real Azure IoT SDKs.

The session hub runs `target/release/spoke-hub` on its own loopback address
(default 127.0.0.21, SPOKE_COMPAT_HUB_IP) with the standard ports 8883 and 443,
because azure-iot-device hard-codes them (spec §0, pitfall 1). Clients use the IP
as HostName; the server certificate's SANs include the bind address.

Environment:
  SPOKE_BIN_DIR               where spoke-hub and spoke are (default: <repo>/target/release,
                              or $CARGO_TARGET_DIR/release)
  SPOKE_COMPAT_HUB_IP         session hub address (default 127.0.0.21)
  SPOKE_COMPAT_RESTART_HUB_IP address of the hub that the restart tests stop and start
                              (default 127.0.0.22)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from helpers import ClientFactory, DeviceFactory, Rest, SpokeCli, now_ms
from hubproc import RUNNING, HubProcess

REPO = Path(__file__).resolve().parent.parent


def _bin_dir() -> Path:
    if os.environ.get("SPOKE_BIN_DIR"):
        return Path(os.environ["SPOKE_BIN_DIR"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "release"


class CaBundle:
    """One PEM file holding the CA of every hub started in this session.

    The service SDK (requests) reads REQUESTS_CA_BUNDLE (spec §0, pitfall 12); a
    combined file lets one process talk to several hubs with different CAs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.write_text("")
        os.environ["REQUESTS_CA_BUNDLE"] = str(path)

    def add(self, pem: str) -> None:
        if pem not in self.path.read_text():
            with self.path.open("a") as f:
                f.write(pem if pem.endswith("\n") else pem + "\n")


@pytest.fixture(scope="session")
def bins() -> dict[str, Path]:
    bin_dir = _bin_dir()
    paths = {name: bin_dir / name for name in ("spoke-hub", "spoke")}
    missing = [str(p) for p in paths.values() if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"binaries not built: {', '.join(missing)} (run `cargo build --release` "
            "or set SPOKE_BIN_DIR)",
            pytrace=False,
        )
    return paths


@pytest.fixture(scope="session")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> CaBundle:
    return CaBundle(tmp_path_factory.mktemp("trust") / "ca-bundle.pem")


@pytest.fixture(scope="session")
def hub_factory(bins, ca_bundle, tmp_path_factory):
    """Starts extra hubs: `hub_factory(ip, name)` -> a running HubProcess (stopped at session end)."""
    started: list[HubProcess] = []

    def start(ip: str, name: str) -> HubProcess:
        root = tmp_path_factory.mktemp(name)
        hub = HubProcess(bins["spoke-hub"], root / "data", ip, root / "spoke-hub.log")
        started.append(hub)
        hub.start()
        ca_bundle.add(hub.ca_pem)
        return hub

    yield start
    # Never raise here: with -x this runs inside pytest_sessionfinish. The clean-exit
    # contract is asserted by the restart tests (HubProcess.restart() returns the status).
    for hub in started:
        try:
            code = hub.stop()
            if code != 0:
                print(f"\nwarning: spoke-hub {hub.ip} exited with status {code} after SIGTERM", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - stop every hub, report each failure
            print(f"\nwarning: stopping spoke-hub {hub.ip}: {e}", file=sys.stderr)
        if hub in RUNNING:
            RUNNING.remove(hub)


@pytest.fixture(scope="session")
def hub(hub_factory) -> HubProcess:
    """The shared hub of the session."""
    return hub_factory(os.environ.get("SPOKE_COMPAT_HUB_IP", "127.0.0.21"), "hub")


@pytest.fixture(scope="session")
def registry(hub):
    from azure.iot.hub import IoTHubRegistryManager

    return IoTHubRegistryManager.from_connection_string(hub.service_connstr)


@pytest.fixture(scope="session")
def spoke(bins, hub) -> SpokeCli:
    return SpokeCli(bins["spoke"], hub)


@pytest.fixture(scope="session")
def rest(hub) -> Rest:
    return Rest(hub)


@pytest.fixture
def devices(hub, registry):
    factory = DeviceFactory(hub, registry)
    yield factory
    factory.cleanup()


@pytest.fixture
def clients(hub):
    factory = ClientFactory(hub)
    yield factory
    factory.cleanup()


@pytest.fixture
def since() -> int:
    """Replay start (ms since the epoch) for monitor-events, taken before the test acts."""
    return now_ms()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the tail of each running hub's log to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for hub in RUNNING:
            report.sections.append((f"spoke-hub {hub.ip} log", hub.log_tail(40)))


class HealthyDevice:
    """A well-behaved device connected across refusal tests: after each refusal it
    must still answer a direct method and get its telemetry acknowledged."""

    def __init__(self, hub, registry) -> None:
        from helpers import serve_methods

        self.registry = registry
        self.devices = DeviceFactory(hub, registry)
        self.clients = ClientFactory(hub)
        self.identity = self.devices.create("healthy")
        self.client = self.clients.device(self.identity)
        self.requests = serve_methods(self.client, 299, {"healthy": True})
        self.checks = 0

    def check(self) -> None:
        from helpers import WAIT_S, invoke

        assert self.client.connected, "the healthy client lost its connection"
        self.checks += 1
        result = invoke(self.registry, self.identity.device_id, "ping", {"n": self.checks})
        assert (result.status, result.payload) == (299, {"healthy": True})
        assert self.requests.get(timeout=WAIT_S).payload == {"n": self.checks}
        self.client.send_message(f"healthy {self.checks}")  # returns after the PUBACK

    def close(self) -> None:
        self.clients.cleanup()
        self.devices.cleanup()


@pytest.fixture(scope="module")
def healthy(hub, registry):
    device = HealthyDevice(hub, registry)
    device.check()
    yield device
    device.close()
