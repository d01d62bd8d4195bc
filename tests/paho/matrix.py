"""The permission matrix of policies/xfinity.policy for the mobile and gateway identities,
driven with paho-mqtt (MQTT 3.1.1 or 5.0) against the broker started by tests/broker_paho.rs.

Denied QoS 1 publishes: PUBACK 0x87 in 5.0 (3.1.1 cannot refuse: plain PUBACK) and never
delivered; SUBACK per filter: 0x87 (5.0) / 0x80 (3.1.1) for a filter outside the rights,
the granted QoS otherwise (containment: a filter must be inside an allowed template;
`$share/<group>/` is judged on the filter after it). Receive filtering: a
`subscriptions filtered` identity may subscribe widely but gets only what it may receive.
"""
from paho_client import (
    GATEWAY, GATEWAY_USER, MOBILE, MOBILE_USER, OTHER_GATEWAY, OTHER_GATEWAY_USER,
    OTHER_PRESENCE, PRESENCE, REQUEST, RESPONSE, SERVICE, SERVICE_USER, Client, arguments, run,
)

DENIED_PUBLISH = {"5": 0x87, "311": 0}
DENIED_FILTER = {"5": 0x87, "311": 0x80}


def mobile_publish(port, protocol):
    service = Client(port, protocol, SERVICE, SERVICE_USER).connect()
    service.subscribe(["c/+/+/lights/+/+"], expect=[1])
    mobile = Client(port, protocol, MOBILE, MOBILE_USER).connect()
    assert mobile.publish(REQUEST, b"on") == 0
    assert service.expect(REQUEST).payload == b"on"
    denied = [
        "c/xfi/P2_A2/lights/" + MOBILE + "/r1",   # another account
        "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J2/r1",  # another client id
        "c/xfi/P1_A1/admin/" + MOBILE + "/r1",     # not a service
        "c/iot/P1_A1/lights/" + MOBILE + "/r1",    # the gateways' namespace
    ]
    for topic in denied:
        got = mobile.publish(topic, b"x")
        assert got == DENIED_PUBLISH[protocol], f"publish {topic}: {got:#x}"
    got = mobile.publish(REQUEST, b"kept", retain=True)
    assert got == DENIED_PUBLISH[protocol], f"retained publish without retain right: {got:#x}"
    service.expect_nothing()
    mobile.close()
    service.close()


def mobile_subscribe(port, protocol):
    mobile = Client(port, protocol, MOBILE, MOBILE_USER).connect()
    filters = [
        "c/xfi/P1_A1/" + MOBILE + "/lights/+/success",           # contained: allowed
        "c/xfi/P1_A1/#",                                          # wider than the rights
        "c/iot/P1_A1/+/presence",                                 # its gateways' presence
        "c/iot/P2_A2/+/presence",                                 # another account
        "$share/g1/c/xfi/P1_A1/" + MOBILE + "/lights/+/success",  # shared, contained
        "$share/g1/c/xfi/P1_A1/" + MOBILE + "/+/+/+",            # shared, not contained
        "$aws/things/P1_A1_lamp/shadow/update/delta",             # own shadow
    ]
    d = DENIED_FILTER[protocol]
    mobile.subscribe(filters, expect=[1, d, 1, d, 1, d, 1])
    mobile.close()


def gateway_publish(port, protocol):
    mobile = Client(port, protocol, MOBILE, MOBILE_USER).connect()
    mobile.subscribe(["c/iot/P1_A1/+/presence"], expect=[1])
    gateway = Client(port, protocol, GATEWAY, GATEWAY_USER).connect()
    assert gateway.publish(PRESENCE, b"online") == 0
    assert mobile.expect(PRESENCE).payload == b"online"
    assert gateway.publish("c/iot/P1_A1/lights/" + GATEWAY + "/r1", b"req") == 0
    assert gateway.publish("$aws/things/P1_A1_lamp/shadow/update", b"{}") == 0
    denied = [
        "c/iot/P2_A2/" + GATEWAY + "/presence",          # another account
        "c/iot/P1_A1/iot:P1_A1:adp:xhf:other/presence",  # another client id
        "c/iot/P1_A1/admin/" + GATEWAY + "/r1",          # admin namespace
        "$aws/things/P2_A2_lamp/shadow/update",          # another account's shadow
    ]
    for topic in denied:
        got = gateway.publish(topic, b"x")
        assert got == DENIED_PUBLISH[protocol], f"publish {topic}: {got:#x}"
    mobile.expect_nothing()
    gateway.close()
    mobile.close()


def gateway_subscribe(port, protocol):
    gateway = Client(port, protocol, GATEWAY, GATEWAY_USER).connect()
    filters = [
        "c/iot/P1_A1/" + GATEWAY + "/locks/+/failure",
        "c/iot/P1_A1/" + GATEWAY + "/+/+/+",
        "c/iot/#",
        "$share/workers/c/iot/P1_A1/" + GATEWAY + "/locks/+/failure",
        "$aws/things/P1_A1_lamp/shadow/update/delta",
        "$aws/things/P2_A2_lamp/shadow/update/delta",
    ]
    d = DENIED_FILTER[protocol]
    gateway.subscribe(filters, expect=[1, d, d, 1, 1, d])
    gateway.close()


def request_and_response(port, protocol):
    service = Client(port, protocol, SERVICE, SERVICE_USER).connect()
    service.subscribe(["$share/lights/c/+/+/lights/+/+"], expect=[1])
    mobile = Client(port, protocol, MOBILE, MOBILE_USER).connect()
    mobile.subscribe(["c/xfi/P1_A1/" + MOBILE + "/lights/+/success"], expect=[1])
    assert mobile.publish(REQUEST, b"turn on") == 0
    assert service.expect(REQUEST).payload == b"turn on"
    assert service.publish(RESPONSE, b"done") == 0
    assert mobile.expect(RESPONSE).payload == b"done"
    mobile.expect_nothing(0.3)
    mobile.close()
    service.close()


def receive_filtering(port, protocol):
    watcher = Client(port, protocol, "watch-1", "watcher").connect()
    watcher.subscribe(["c/iot/#"], expect=[1])
    gateway = Client(port, protocol, GATEWAY, GATEWAY_USER).connect()
    other = Client(port, protocol, OTHER_GATEWAY, OTHER_GATEWAY_USER).connect()
    assert other.publish(OTHER_PRESENCE, b"hidden") == 0
    assert gateway.publish("c/iot/P1_A1/lights/" + GATEWAY + "/r1", b"not presence") == 0
    assert gateway.publish(PRESENCE, b"visible") == 0
    assert watcher.expect(PRESENCE).payload == b"visible"
    watcher.expect_nothing()
    for client in (other, gateway, watcher):
        client.close()


if __name__ == "__main__":
    run([mobile_publish, mobile_subscribe, gateway_publish, gateway_subscribe,
         request_and_response, receive_filtering], arguments())
