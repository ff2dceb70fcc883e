"""Shared helpers of the compatibility suite.

Owns: unique identities, SAS tokens computed the way each SDK computes them
(spec §2.1), the `spoke` CLI runner, `spoke monitor-events` replay, the device /
client factories used by the fixtures, and small event/queue utilities.

Invariant: every wait in the suite is on an event, a queue or a subprocess with a
deadline; nothing sleeps to synchronize.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, quote_plus, unquote

import requests

# The api-version the service SDK sends (spec §5.1); the hub accepts any value.
API_VERSION = "2021-04-12"
# Generous bound for anything that crosses the hub once.
WAIT_S = 30.0


# -- identities and credentials ---------------------------------------------------


def unique_id(prefix: str) -> str:
    """A device/module ID unique to this run (so event replays never mix tests)."""
    return f"compat-{prefix}-{uuid.uuid4().hex[:12]}"


def random_key() -> str:
    """A key shaped like the hub's generated ones: 32 random bytes, base64."""
    return base64.b64encode(os.urandom(32)).decode()


def parse_connection_string(cs: str) -> dict[str, str]:
    """`k=v;k=v`, each pair split on its first `=` (spec §1)."""
    out: dict[str, str] = {}
    for part in cs.split(";"):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"bad connection-string segment {part!r} in {cs!r}")
        out[key] = value
    return out


def device_connection_string(hostname: str, device_id: str, key: str, module_id: str | None = None) -> str:
    cs = f"HostName={hostname};DeviceId={device_id}"
    if module_id:
        cs += f";ModuleId={module_id}"
    return cs + f";SharedAccessKey={key}"


def _sign(key_b64: str, message: str) -> str:
    digest = hmac.new(base64.b64decode(key_b64), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def device_sas_token(
    hostname: str,
    device_id: str,
    key_b64: str,
    module_id: str | None = None,
    ttl: int = 3600,
    expiry: int | None = None,
) -> str:
    """A device/module token as azure-iot-device builds it (spec §2.1):
    sr = quote(uri, safe=""), sig = quote(b64, safe=""), no skn."""
    uri = f"{hostname}/devices/{device_id}" + (f"/modules/{module_id}" if module_id else "")
    sr = quote(uri, safe="")
    se = int(time.time()) + ttl if expiry is None else expiry
    sig = quote(_sign(key_b64, f"{sr}\n{se}"), safe="")
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={se}"


def service_sas_token(hostname: str, policy: str, key_b64: str, ttl: int = 3600, expiry: int | None = None) -> str:
    """A service token as azure-iot-hub's REST client builds it (spec §2.1):
    sr = quote_plus(host), sig = quote(b64) (keeps `/`), skn = policy."""
    sr = quote_plus(hostname)
    se = int(time.time()) + ttl if expiry is None else expiry
    sig = quote(_sign(key_b64, f"{sr}\n{se}"))
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={se}&skn={policy}"


def parse_property_bag(bag: str) -> dict[str, str | None]:
    """`k=v&k2=v2` with `unquote` (not unquote_plus) on keys and values; a key
    without `=` maps to None (spec §3.6)."""
    out: dict[str, str | None] = {}
    for pair in bag.split("&"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        out[unquote(key)] = unquote(value) if sep else None
    return out


def mqtt_username(hostname: str, device_id: str, module_id: str | None = None) -> str:
    """`{host}/{device}[/{module}]/?api-version=...` (spec §3.2)."""
    path = f"{device_id}/{module_id}" if module_id else device_id
    return f"{hostname}/{path}/?api-version={API_VERSION}"


# -- service side -------------------------------------------------------------------


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an msrest HttpOperationError (None for other errors)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


class Rest:
    """Raw HTTPS calls to the hub's REST API with a service token (for refusal tests)."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        parts = parse_connection_string(hub.service_connstr)
        self.policy = parts["SharedAccessKeyName"]
        self.key = parts["SharedAccessKey"]

    def token(self, **kw: Any) -> str:
        return service_sas_token(self.hub.hostname, self.policy, kw.pop("key", self.key), **kw)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        token: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sep = "&" if "?" in path else "?"
        url = f"https://{self.hub.hostname}{path}{sep}api-version={API_VERSION}"
        hdrs = {"Accept": "application/json", "Content-Type": "application/json; charset=utf-8"}
        if token == "default":
            token = self.token()
        if token is not None:
            hdrs["Authorization"] = token
        hdrs.update(headers or {})
        return requests.request(method, url, data=body, headers=hdrs, verify=str(self.hub.ca_file), timeout=WAIT_S)


# -- the spoke CLI ------------------------------------------------------------------


class SpokeCli:
    """Runs `spoke` against one hub (SPOKE_HUB_CONNECTION_STRING, SPOKE_CA_FILE)."""

    def __init__(self, binary: Path, hub: Any) -> None:
        self.binary = Path(binary)
        self.hub = hub

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SPOKE_HUB_CONNECTION_STRING"] = self.hub.service_connstr
        env["SPOKE_CA_FILE"] = str(self.hub.ca_file)
        return env

    def run(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.binary), *args],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`spoke {' '.join(args)}` exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def c2d_send(
        self,
        device_id: str,
        data: str,
        props: dict[str, str] | None = None,
        message_id: str | None = None,
    ) -> None:
        """`spoke c2d send ID --data TEXT [--prop K=V]... [--message-id M]`."""
        args = ["c2d", "send", device_id, "--data", data]
        for key, value in (props or {}).items():
            args += ["--prop", f"{key}={value}"]
        if message_id is not None:
            args += ["--message-id", message_id]
        self.run(*args)

    def replay_events(
        self,
        device_id: str,
        since_ms: int,
        until: Callable[[list[dict]], bool],
        timeout: float = WAIT_S,
    ) -> list[dict]:
        """Replays stored events of one device from `since_ms` with
        `spoke monitor-events --device-id D --enqueued-time MS --timeout S --output json`
        and returns the `event` objects read once `until(events)` holds.

        Raises AssertionError (with everything read) when the deadline passes first.
        """
        argv = [
            str(self.binary), "monitor-events",
            "--device-id", device_id,
            "--enqueued-time", str(since_ms),
            "--timeout", str(int(timeout) + 5),
            "--output", "json",
        ]
        proc = subprocess.Popen(
            argv, env=self.env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group, stopped as a whole below
        )
        lines: queue.Queue[str | None] = queue.Queue()
        other: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        events: list[dict] = []
        deadline = time.monotonic() + timeout
        try:
            while not until(events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    line = lines.get(timeout=remaining)
                except queue.Empty:
                    break
                if line is None:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    other.append(line.rstrip())
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("event"), dict):
                    if obj["event"].get("origin") == device_id:
                        events.append(obj["event"])
                else:
                    other.append(line.rstrip())
        finally:
            _signal_group(proc, signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                _, err = proc.communicate()
        if not until(events):
            raise AssertionError(
                f"monitor-events for {device_id} since {since_ms}: condition not met within "
                f"{timeout} s.\nevents: {json.dumps(events, indent=1)}\n"
                f"other stdout: {other}\nstderr: {err}\nexit: {proc.returncode}"
            )
        return events

    def events_by_message_id(
        self, device_id: str, since_ms: int, message_ids: list[str], timeout: float = WAIT_S
    ) -> dict[str, dict]:
        """Replays until every message ID was seen; returns message_id -> event."""

        def seen(events: list[dict]) -> bool:
            return set(message_ids) <= {system_props(e).get("message_id") for e in events}

        events = self.replay_events(device_id, since_ms, seen, timeout)
        return {system_props(e)["message_id"]: e for e in events if system_props(e).get("message_id") in message_ids}

    def events_before_marker(self, device_id: str, since_ms: int, marker_id: str) -> list[dict]:
        """Events of a device stored before the event with message ID `marker_id`.

        Used to show a refused message was never stored: a later, legitimate
        marker message bounds the replay instead of a fixed wait.
        """
        events = self.replay_events(
            device_id, since_ms, lambda evs: any(system_props(e).get("message_id") == marker_id for e in evs)
        )
        out = []
        for event in events:
            if system_props(event).get("message_id") == marker_id:
                break
            out.append(event)
        return out


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def system_props(event: dict) -> dict:
    return (event.get("properties") or {}).get("system") or {}


def app_props(event: dict) -> dict:
    return (event.get("properties") or {}).get("application") or {}


def now_ms() -> int:
    """A replay start for `--enqueued-time`, one second early for clock granularity."""
    return int(time.time() * 1000) - 1000


# -- identities in the registry ------------------------------------------------------


@dataclass
class Identity:
    """A device (or module) identity created in the hub's registry."""

    hostname: str
    device_id: str
    primary_key: str
    secondary_key: str
    module_id: str | None = None

    @property
    def connection_string(self) -> str:
        return device_connection_string(self.hostname, self.device_id, self.primary_key, self.module_id)

    def sas_token(self, **kw: Any) -> str:
        return device_sas_token(self.hostname, self.device_id, self.primary_key, module_id=self.module_id, **kw)

    @property
    def mqtt_client_id(self) -> str:
        return f"{self.device_id}/{self.module_id}" if self.module_id else self.device_id

    @property
    def mqtt_username(self) -> str:
        return mqtt_username(self.hostname, self.device_id, self.module_id)


class DeviceFactory:
    """Creates identities through IoTHubRegistryManager and deletes them afterwards."""

    def __init__(self, hub: Any, registry: Any) -> None:
        self.hub = hub
        self.registry = registry
        self.created: list[str] = []

    def create(self, prefix: str = "dev", status: str = "enabled", device_id: str | None = None) -> Identity:
        """`create_device_with_sas(id, None, None, status)`: the hub generates both keys."""
        device_id = device_id or unique_id(prefix)
        device = self.registry.create_device_with_sas(device_id, None, None, status)
        self.created.append(device_id)
        keys = device.authentication.symmetric_key
        return Identity(self.hub.hostname, device_id, keys.primary_key, keys.secondary_key)

    def create_module(self, device: Identity, prefix: str = "mod") -> Identity:
        module_id = unique_id(prefix)
        module = self.registry.create_module_with_sas(device.device_id, module_id, None, None, None)
        keys = module.authentication.symmetric_key
        return Identity(self.hub.hostname, device.device_id, keys.primary_key, keys.secondary_key, module_id)

    def cleanup(self) -> None:
        for device_id in self.created:
            try:
                self.registry.delete_device(device_id)
            except Exception:  # noqa: BLE001 - best-effort cleanup (already deleted, hub down)
                pass
        self.created.clear()


class ClientFactory:
    """Builds azure-iot-device clients trusting the hub's CA and shuts them down afterwards."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.clients: list[Any] = []

    def device(self, identity: Identity, connect: bool = True, **kwargs: Any) -> Any:
        from azure.iot.device import IoTHubDeviceClient, IoTHubModuleClient

        kwargs.setdefault("server_verification_cert", self.hub.ca_pem)
        kwargs.setdefault("connection_retry_interval", 1)
        cls = IoTHubModuleClient if identity.module_id else IoTHubDeviceClient
        client = cls.create_from_connection_string(identity.connection_string, **kwargs)
        self.clients.append(client)
        if connect:
            client.connect()
        return client

    def cleanup(self) -> None:
        for client in self.clients:
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass
        self.clients.clear()


# -- device-side handlers ------------------------------------------------------------


def serve_methods(client: Any, status: int = 299, payload: Any = None) -> "queue.Queue[Any]":
    """Answers every direct method with (status, payload); returns the queue of requests.

    Setting the handler on a connected client returns after the SUBACK.
    """
    from azure.iot.device import MethodResponse

    requests_q: queue.Queue[Any] = queue.Queue()

    def handler(request: Any) -> None:
        requests_q.put(request)
        client.send_method_response(MethodResponse.create_from_method_request(request, status, payload))

    client.on_method_request_received = handler
    return requests_q


def receive_c2d(client: Any) -> "queue.Queue[Any]":
    q: queue.Queue[Any] = queue.Queue()
    client.on_message_received = q.put
    return q


def receive_desired(client: Any) -> "queue.Queue[dict]":
    q: queue.Queue[dict] = queue.Queue()
    client.on_twin_desired_properties_patch_received = q.put
    return q


def get_matching(q: "queue.Queue[Any]", predicate: Callable[[Any], bool], timeout: float = WAIT_S) -> Any:
    """Takes items from `q` until one satisfies `predicate` (others are dropped)."""
    deadline = time.monotonic() + timeout
    skipped = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching item within {timeout} s; skipped: {skipped}")
        try:
            item = q.get(timeout=remaining)
        except queue.Empty:
            continue
        if predicate(item):
            return item
        skipped.append(item)


class ConnectionWatcher:
    """Records azure-iot-device connection-state changes as a queue of booleans."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.states: queue.Queue[bool] = queue.Queue()
        client.on_connection_state_change = lambda: self.states.put(client.connected)

    def wait_for(self, connected: bool, timeout: float = 60.0) -> None:
        """Waits until a state change to `connected` is reported (earlier ones are skipped)."""
        get_matching(self.states, lambda s: s is connected, timeout)


def invoke(registry: Any, device_id: str, name: str, payload: Any = None, module_id: str | None = None,
           response_timeout: int = 30, connect_timeout: int | None = None) -> Any:
    """Direct method through the service SDK (POST /twins/{id}[/modules/{m}]/methods)."""
    from azure.iot.hub.models import CloudToDeviceMethod

    request = CloudToDeviceMethod(
        method_name=name,
        payload=payload,
        response_timeout_in_seconds=response_timeout,
        connect_timeout_in_seconds=connect_timeout,
    )
    if module_id:
        return registry.invoke_device_module_method(device_id, module_id, request)
    return registry.invoke_device_method(device_id, request)


def json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
