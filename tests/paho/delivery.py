"""Delivery guarantees with paho-mqtt (MQTT 3.1.1 or 5.0) against the topicguard broker:
QoS 1 and 2 end to end, retained messages (the retain right, and the receive check on
delivery), and the last will (published on ungraceful loss, not on DISCONNECT).
"""
import subprocess
import sys
import time

from paho_client import (
    GATEWAY, GATEWAY_USER, MOBILE, MOBILE_USER, OTHER_GATEWAY, OTHER_GATEWAY_USER,
    OTHER_PRESENCE, PRESENCE, REQUEST, RESPONSE, SERVICE, SERVICE_USER, STEP, Client,
    arguments, run,
)

DENIED_PUBLISH = {"5": 0x87, "311": 0}


def qos1_and_qos2(port, protocol):
    mobile = Client(port, protocol, MOBILE, MOBILE_USER).connect()
    mobile.subscribe(["c/xfi/P1_A1/" + MOBILE + "/lights/+/success"], qos=2, expect=[2])
    service = Client(port, protocol, SERVICE, SERVICE_USER).connect()
    for qos in (1, 2):
        payload = f"qos{qos}".encode()
        assert service.publish(RESPONSE, payload, qos=qos) == 0
        message = mobile.expect(RESPONSE)
        assert (message.payload, message.qos) == (payload, qos), (message.payload, message.qos)
    mobile.expect_nothing(0.5)  # exactly once: no duplicate
    service.close()
    mobile.close()


def retained(port, protocol):
    gateway = Client(port, protocol, GATEWAY, GATEWAY_USER).connect()
    assert gateway.publish(PRESENCE, b"online", retain=True) == 0
    other = Client(port, protocol, OTHER_GATEWAY, OTHER_GATEWAY_USER).connect()
    assert other.publish(OTHER_PRESENCE, b"secret", retain=True) == 0
    mobile = Client(port, protocol, MOBILE, MOBILE_USER).connect()
    got = mobile.publish(REQUEST, b"kept?", retain=True)
    assert got == DENIED_PUBLISH[protocol], f"mobile has no retain right: {got:#x}"
    mobile.subscribe(["c/iot/P1_A1/+/presence"], expect=[1])
    message = mobile.expect(PRESENCE)
    assert (message.payload, message.retain) == (b"online", True)
    watcher = Client(port, protocol, "watch-2", "watcher").connect()
    watcher.subscribe(["c/iot/#"], expect=[1])
    message = watcher.expect(PRESENCE)  # P9_A9's retained presence is never delivered
    assert message.retain
    watcher.expect_nothing()
    service = Client(port, protocol, SERVICE, SERVICE_USER).connect()
    service.subscribe(["c/+/+/lights/+/+"], expect=[1])
    service.expect_nothing(0.5)  # the refused retained request was not stored
    assert gateway.publish(PRESENCE, b"", retain=True) == 0  # empty payload: delete
    assert other.publish(OTHER_PRESENCE, b"", retain=True) == 0
    for client in (service, watcher, mobile, other, gateway):
        client.close()


def will_child(port, protocol):
    """Connects as the gateway with a will, says READY, then waits to be killed."""
    gateway = Client(port, protocol, GATEWAY, GATEWAY_USER,
                     will=(PRESENCE, b"offline", 1, True)).connect()
    print("READY", flush=True)
    time.sleep(30)
    gateway.close()


def start_will_child(port, protocol):
    child = subprocess.Popen(
        [sys.executable, __file__, "--port", str(port), "--protocol", protocol, "--will-child"],
        stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line.strip() == "READY", f"will child said {line!r}"
    return child


def will(port, protocol):
    mobile = Client(port, protocol, MOBILE, MOBILE_USER).connect()
    mobile.subscribe(["c/iot/P1_A1/+/presence"], expect=[1])
    child = start_will_child(port, protocol)
    child.kill()  # ungraceful: the TCP connection drops without DISCONNECT
    child.wait(STEP)
    message = mobile.expect(PRESENCE)
    assert message.payload == b"offline", message.payload
    graceful = Client(port, protocol, GATEWAY, GATEWAY_USER,
                      will=(PRESENCE, b"offline again", 1, False)).connect()
    graceful.close()  # DISCONNECT: no will
    mobile.expect_nothing()
    mobile.close()


def will_outside_rights_is_refused(port, protocol):
    client = Client(port, protocol, MOBILE, MOBILE_USER, will=(PRESENCE, b"x", 0, False))
    # 5.0: CONNACK 0x87; 3.1.1: return code 5, which paho reports as reason 0x87 too.
    client.connect(expect=0x87)
    client.mqtt.loop_stop()


if __name__ == "__main__":
    if "--will-child" in sys.argv:
        sys.argv.remove("--will-child")
        args = arguments()
        will_child(args.port, args.protocol)
    else:
        run([qos1_and_qos2, retained, will, will_outside_rights_is_refused], arguments())
