"""A small synchronous wrapper over paho-mqtt for the broker tests (tests/broker_paho.rs).

Every wait is bounded (STEP seconds); a timeout raises AssertionError with what was
awaited. Talks only to 127.0.0.1 on the port given by the Rust test.
"""
import queue
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

STEP = 5.0

MOBILE_USER = "mobile:P1:A1:J1"
MOBILE = "xfi:P1_A1:clt:J1"
IID = "0f8fad5b-d9cb-469f-a165-70867728950e"
GATEWAY_USER = "gateway:P1:A1:" + IID
GATEWAY = "iot:P1_A1:adp:xhf:" + IID
OTHER_IID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
OTHER_GATEWAY_USER = "gateway:P9:A9:" + OTHER_IID
OTHER_GATEWAY = "iot:P9_A9:adp:xhf:" + OTHER_IID
SERVICE_USER = "service:lights"
SERVICE = "svc:lights:1"

REQUEST = "c/xfi/P1_A1/lights/" + MOBILE + "/r1"
RESPONSE = "c/xfi/P1_A1/" + MOBILE + "/lights/r1/success"
PRESENCE = "c/iot/P1_A1/" + GATEWAY + "/presence"
OTHER_PRESENCE = "c/iot/P9_A9/" + OTHER_GATEWAY + "/presence"


def protocol_of(name):
    return {"311": mqtt.MQTTv311, "5": mqtt.MQTTv5}[name]


def code(reason):
    """The numeric value of a paho ReasonCode (or an int)."""
    return getattr(reason, "value", reason)


class Client:
    """One connection; messages land in a queue, acknowledgements in dicts keyed by mid."""

    def __init__(self, port, protocol, client_id, username=None, will=None, clean=True):
        self.port = port
        self.v5 = protocol == "5"
        self.client_id = client_id
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol_of(protocol),
            clean_session=None if self.v5 else clean,
        )
        if username is not None:
            self.mqtt.username_pw_set(username, "unused")
        if will is not None:
            topic, payload, qos, retain = will
            self.mqtt.will_set(topic, payload, qos=qos, retain=retain)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.connack = None
        self.connack_properties = None
        self.acks = {}
        self.subacks = {}
        self.done = threading.Condition()
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_message = lambda c, u, m: self.messages.put(m)
        self.mqtt.on_publish = self._on_publish
        self.mqtt.on_subscribe = self._on_subscribe

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.connack = code(reason)
        self.connack_properties = properties
        self.connected.set()

    def _on_publish(self, client, userdata, mid, reason, properties):
        with self.done:
            self.acks[mid] = code(reason)
            self.done.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, properties):
        with self.done:
            self.subacks[mid] = [code(r) for r in reasons]
            self.done.notify_all()

    def connect(self, expect=0, keepalive=30):
        self.mqtt.connect("127.0.0.1", self.port, keepalive=keepalive)
        self.mqtt.loop_start()
        assert self.connected.wait(STEP), f"{self.client_id}: no CONNACK within {STEP}s"
        assert self.connack == expect, f"{self.client_id}: CONNACK {self.connack:#x}, expected {expect:#x}"
        return self

    def _wait(self, table, mid, what):
        with self.done:
            ok = self.done.wait_for(lambda: mid in table, STEP)
        assert ok, f"{self.client_id}: no {what} for mid {mid} within {STEP}s"
        return table[mid]

    def subscribe(self, filters, qos=1, expect=None):
        """Subscribes to every filter in one SUBSCRIBE; checks the per-filter SUBACK codes
        against `expect` when given, and returns them."""
        result, mid = self.mqtt.subscribe([(f, qos) for f in filters])
        assert result == mqtt.MQTT_ERR_SUCCESS, f"subscribe not sent: {result}"
        codes = self._wait(self.subacks, mid, "SUBACK")
        if expect is not None:
            shown = ", ".join(f"{f} -> {c:#x}" for f, c in zip(filters, codes))
            assert codes == expect, f"{self.client_id}: SUBACK {shown}; expected {[hex(e) for e in expect]}"
        return codes

    def publish(self, topic, payload, qos=1, retain=False):
        """Publishes; returns the PUBACK/PUBREC reason (0 for QoS 0)."""
        info = self.mqtt.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish not sent: {info.rc}"
        if qos == 0:
            return 0
        return self._wait(self.acks, info.mid, "PUBACK/PUBCOMP")

    def expect(self, topic=None):
        try:
            message = self.messages.get(timeout=STEP)
        except queue.Empty:
            raise AssertionError(f"{self.client_id}: no message within {STEP}s (wanted {topic})")
        if topic is not None:
            assert message.topic == topic, f"{self.client_id}: got {message.topic}, wanted {topic}"
        return message

    def expect_nothing(self, quiet=1.0):
        try:
            message = self.messages.get(timeout=quiet)
        except queue.Empty:
            return
        raise AssertionError(f"{self.client_id}: unexpected message on {message.topic}: {message.payload!r}")

    def close(self):
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


def run(cases, args):
    """Runs each case(port, protocol), printing one line per case; exits 1 on any failure."""
    import sys
    import traceback

    failed = 0
    for case in cases:
        try:
            case(args.port, args.protocol)
            print(f"ok   {case.__name__} (MQTT {args.protocol})", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {case.__name__} (MQTT {args.protocol})", flush=True)
            traceback.print_exc(file=sys.stdout)
    print(f"{len(cases) - failed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


def arguments():
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=["311", "5"], required=True)
    return parser.parse_args()
