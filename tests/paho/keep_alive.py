"""Keep-alive 0 with paho-mqtt (MQTT 3.1.1 or 5.0) against the topicguard broker: a client
asking for keep-alive 0 (never time out) is accepted as it asked — 5.0 gets no Server Keep
Alive overriding it — and then publishes and receives as usual.
"""
from paho_client import Client, arguments, run


def keep_alive_zero(port, protocol):
    client = Client(port, protocol, "dev-ka0").connect(keepalive=0)
    if client.v5:
        imposed = getattr(client.connack_properties, "ServerKeepAlive", None)
        assert imposed is None, f"the broker imposed a keep-alive of {imposed}s"
    client.subscribe(["dev/ka0"], expect=[1])
    assert client.publish("dev/ka0", b"idle is fine") == 0
    message = client.expect("dev/ka0")
    assert message.payload == b"idle is fine", message.payload
    client.close()


if __name__ == "__main__":
    run([keep_alive_zero], arguments())
