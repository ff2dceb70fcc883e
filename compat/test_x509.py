"""X.509 self-signed device authentication (spec §2.3): the registry holds the certificate's
thumbprint; the device presents the certificate in the TLS handshake and sends no password."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import uuid

import pytest
from azure.iot.device import IoTHubDeviceClient, Message, X509
from azure.iot.device.exceptions import ClientError, ConnectionFailedError, CredentialError

from helpers import unique_id


def _self_signed(tmp_path, name: str) -> tuple[str, str, str]:
    """A self-signed certificate with CN=name; returns (cert file, key file, SHA-1 thumbprint)."""
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return str(cert), str(key), hashlib.sha1(der).hexdigest().upper()


def _client(hub, device_id: str, cert: str, key: str) -> IoTHubDeviceClient:
    return IoTHubDeviceClient.create_from_x509_certificate(
        x509=X509(cert_file=cert, key_file=key),
        hostname=hub.hostname,
        device_id=device_id,
        server_verification_cert=hub.ca_pem,
        connection_retry=False,
    )


def test_x509_device_connects_and_sends(hub, registry, devices, spoke, since, tmp_path):
    device_id = unique_id("x509")
    cert, key, thumbprint = _self_signed(tmp_path, device_id)
    registry.create_device_with_x509(device_id, thumbprint, thumbprint, "enabled")
    devices.created.append(device_id)
    client = _client(hub, device_id, cert, key)
    try:
        client.connect()
        message = Message("signed by a certificate")
        message.message_id = "x509-" + uuid.uuid4().hex
        client.send_message(message)
    finally:
        client.shutdown()
    event = spoke.events_by_message_id(device_id, since, [message.message_id])[message.message_id]
    assert event["payload"] == "signed by a certificate"
    assert '"type":"x509"' in event["annotations"]["iothub-connection-auth-method"]


def test_x509_unregistered_certificate_is_refused(hub, registry, devices, tmp_path):
    device_id = unique_id("x509bad")
    _, _, thumbprint = _self_signed(tmp_path, device_id)
    other_cert, other_key, _ = _self_signed(tmp_path, device_id + "-other")
    registry.create_device_with_x509(device_id, thumbprint, thumbprint, "enabled")
    devices.created.append(device_id)
    client = _client(hub, device_id, other_cert, other_key)
    try:
        with pytest.raises((ClientError, ConnectionFailedError, CredentialError)):
            client.connect()
    finally:
        client.shutdown()
