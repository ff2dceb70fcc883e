"""A simulated device for the demo: the unchanged Azure IoT device SDK talking to Spoke Hub.

Sends a temperature reading every `interval` seconds (a desired property), answers the direct
method `getReading`, and reports its interval back.
"""
import json
import random
import sys
import threading

from azure.iot.device import IoTHubDeviceClient, Message, MethodResponse


def main():
    connection_string, ca_file = sys.argv[1], sys.argv[2]
    with open(ca_file) as f:
        client = IoTHubDeviceClient.create_from_connection_string(
            connection_string, server_verification_cert=f.read())
    state = {"interval": 1.0, "temperature": 21.0}
    stop = threading.Event()

    def on_desired(patch):
        if "interval" in patch:
            state["interval"] = float(patch["interval"])
            client.patch_twin_reported_properties({"interval": state["interval"]})

    def on_method(request):
        client.send_method_response(MethodResponse.create_from_method_request(
            request, 200, {"temperature": state["temperature"]}))

    client.on_twin_desired_properties_patch_received = on_desired
    client.on_method_request_received = on_method
    client.connect()
    while not stop.wait(state["interval"]):
        state["temperature"] = round(state["temperature"] + random.uniform(-0.5, 0.5), 2)
        message = Message(json.dumps({"temperature": state["temperature"]}),
                          content_type="application/json", content_encoding="utf-8")
        message.custom_properties["alert"] = str(state["temperature"] > 25).lower()
        client.send_message(message)


if __name__ == "__main__":
    main()
