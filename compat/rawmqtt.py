"""A minimal MQTT 3.1.1 client over TLS, byte by byte, for the refusal tests.

Owns: encoding the few packets the tests send (CONNECT, PUBLISH, SUBSCRIBE,
PUBACK, DISCONNECT), decoding what comes back, and observing whether the hub
closed the connection. Unlike paho it never reconnects by itself and lets a test
send arbitrary bytes (malformed packets) after the TLS handshake.

Packet layouts follow MQTT 3.1.1 (OASIS, 2014): fixed header §2.2, remaining
length §2.2.3, CONNECT §3.1, CONNACK §3.2, PUBLISH §3.3, SUBSCRIBE/SUBACK §3.8/§3.9.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14


def encode_remaining_length(n: int) -> bytes:
    """§2.2.3: 7 bits per byte, continuation bit 0x80, at most 4 bytes."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_str(s: str | bytes) -> bytes:
    data = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(data)) + data


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | flags]) + encode_remaining_length(len(body)) + body


def connect_packet(
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    clean: bool = False,
    keepalive: int = 60,
    protocol_name: bytes = b"MQTT",
    level: int = 4,
) -> bytes:
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    flags |= 0x02 if clean else 0
    body = encode_str(protocol_name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    body += encode_str(client_id)
    if username is not None:
        body += encode_str(username)
    if password is not None:
        body += encode_str(password)
    return packet(CONNECT, 0, body)


def publish_packet(topic: str, payload: bytes, qos: int = 1, pid: int = 1) -> bytes:
    body = encode_str(topic) + (struct.pack("!H", pid) if qos else b"") + payload
    return packet(PUBLISH, qos << 1, body)


def subscribe_packet(pid: int, topic: str, qos: int = 1) -> bytes:
    return packet(SUBSCRIBE, 0x02, struct.pack("!H", pid) + encode_str(topic) + bytes([qos]))


def puback_packet(pid: int) -> bytes:
    return packet(PUBACK, 0, struct.pack("!H", pid))


def disconnect_packet() -> bytes:
    return packet(DISCONNECT, 0, b"")


@dataclass
class Packet:
    """A decoded control packet (fixed-header type and flags, raw variable part)."""

    ptype: int
    flags: int
    body: bytes

    @property
    def pid(self) -> int | None:
        if self.ptype in (PUBACK, SUBACK):
            return struct.unpack("!H", self.body[:2])[0]
        return None

    def publish_topic(self) -> str:
        (n,) = struct.unpack("!H", self.body[:2])
        return self.body[2 : 2 + n].decode()

    def publish_pid(self) -> int:
        (n,) = struct.unpack("!H", self.body[:2])
        return struct.unpack("!H", self.body[2 + n : 4 + n])[0]

    def publish_payload(self) -> bytes:
        (n,) = struct.unpack("!H", self.body[:2])
        qos = (self.flags >> 1) & 3
        return self.body[2 + n + (2 if qos else 0) :]


class Closed(Exception):
    """The hub closed the connection."""


_CLOSED_ERRORS = (ConnectionError, ssl.SSLError, BrokenPipeError)


class RawMqtt:
    """One TLS connection to the hub's MQTT port, driven packet by packet."""

    def __init__(self, host: str, port: int, ca_file: str, timeout: float = 10.0) -> None:
        ctx = ssl.create_default_context(cafile=ca_file)
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.timeout = timeout
        self._buf = b""
        self.closed = False
        self.received: list[Packet] = []

    # -- bytes -----------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Sends bytes; returns False (instead of raising) when the hub already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (*_CLOSED_ERRORS, OSError):
            self.closed = True
            return False

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the hub before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError("no data from the hub before the deadline") from e
        except (*_CLOSED_ERRORS, OSError) as e:
            self.closed = True
            raise Closed(str(e)) from e
        if not chunk:
            self.closed = True
            raise Closed("EOF")
        self._buf += chunk

    def read_packet(self, timeout: float | None = None) -> Packet:
        """Reads one packet; raises Closed on EOF/reset and TimeoutError on silence."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            parsed = self._try_parse()
            if parsed is not None:
                self.received.append(parsed)
                return parsed
            self._fill(deadline)

    def _try_parse(self) -> Packet | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(buf):
                return None
            byte = buf[i]
            length += (byte & 0x7F) * mult
            mult *= 128
            i += 1
            if not byte & 0x80:
                break
            if i > 4:
                raise ValueError("malformed remaining length from the hub")
        if len(buf) < i + length:
            return None
        pkt = Packet(buf[0] >> 4, buf[0] & 0x0F, buf[i : i + length])
        self._buf = buf[i + length :]
        return pkt

    def read_until(self, ptype: int, timeout: float | None = None) -> Packet:
        """Reads packets until one of `ptype` arrives (others are kept in `received`)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            pkt = self.read_packet(timeout=max(0.0, deadline - time.monotonic()))
            if pkt.ptype == ptype:
                return pkt
            if pkt.ptype == PUBLISH and (pkt.flags >> 1) & 3:
                # Acknowledge QoS 1 deliveries so the hub is not left waiting.
                self.send(puback_packet(pkt.publish_pid()))

    def wait_closed(self, timeout: float = 10.0) -> list[Packet]:
        """Waits for the hub to close the connection; returns the packets read meanwhile.

        Raises AssertionError when the connection is still open at the deadline.
        """
        deadline = time.monotonic() + timeout
        got: list[Packet] = []
        while True:
            try:
                got.append(self.read_packet(timeout=max(0.0, deadline - time.monotonic())))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError(
                    f"the hub kept the connection open for {timeout} s; packets read: {got}"
                ) from None

    # -- MQTT --------------------------------------------------------------------

    def connect(self, client_id: str, username: str | None, password: str | None, clean: bool = False) -> tuple[bool, int]:
        """Sends CONNECT and returns (session_present, return_code) from the CONNACK."""
        self.send(connect_packet(client_id, username, password, clean=clean))
        ack = self.read_until(CONNACK)
        if len(ack.body) != 2:
            raise AssertionError(f"CONNACK with a body of {len(ack.body)} bytes: {ack}")
        return bool(ack.body[0] & 1), ack.body[1]

    def subscribe(self, pid: int, topic: str, qos: int = 1) -> list[int]:
        """SUBSCRIBE one filter; returns the SUBACK return codes."""
        self.send(subscribe_packet(pid, topic, qos))
        ack = self.read_until(SUBACK)
        return list(ack.body[2:])

    def publish(self, topic: str, payload: bytes, pid: int = 1, qos: int = 1) -> bool:
        return self.send(publish_packet(topic, payload, qos=qos, pid=pid))

    def close(self) -> None:
        if not self.closed:
            self.send(disconnect_packet())
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def __enter__(self) -> "RawMqtt":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
