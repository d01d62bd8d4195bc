#!/usr/bin/env python3
"""Captures the seed corpus of the mqtt_decode fuzz target from real MQTT clients.

Starts Debian's mosquitto broker on a loopback port, puts a recording TCP proxy in front of
it, and runs real clients through the proxy: mosquitto_pub / mosquitto_sub (MQTT 3.1.1 and
5.0: wills, user properties, QoS 0/1/2, retained, several filters, shared subscriptions) and
paho-mqtt (v3.1.1 and v5: topic aliases, session expiry, unsubscribe, ping). Each client
connection's client-to-server bytes become one seed file: CONNECT first, then whatever the
client sent on that connection, exactly as the broker received it.

Usage: fuzz/scripts/capture-mqtt-seeds.py OUT_DIR   (loopback only; stops by itself)
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Recorder:
    """A TCP proxy that keeps each connection's client-to-server bytes."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((HOST, 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.sessions = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.upstream_port), timeout=10)
            record = bytearray()
            with self.lock:
                self.sessions.append(record)
            threading.Thread(target=pipe, args=(client, upstream, record), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client, None), daemon=True).start()

    def take(self):
        time.sleep(0.3)
        with self.lock:
            taken, self.sessions = self.sessions, []
        return [bytes(s) for s in taken if s]


def pipe(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                record.extend(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def mosquitto_clients(port):
    """(name, [commands run together]) for mosquitto_pub / mosquitto_sub."""
    p = ["-h", HOST, "-p", str(port)]
    sub = lambda *a: ["mosquitto_sub", *p, "-W", "2", *a]
    pub = lambda *a: ["mosquitto_pub", *p, *a]
    cases = []
    for v, name in (("mqttv311", "v311"), ("mqttv5", "v5")):
        cases += [
            (f"pub-qos0-{name}", [pub("-V", v, "-t", "c/xfi/P1_A1/lights/c1/r1", "-m", "on", "-i", "xfi:P1_A1:clt:J1")]),
            (f"pub-qos1-retain-{name}", [pub("-V", v, "-q", "1", "-r", "-t", "c/iot/P1_A1/gw/presence", "-m", "online")]),
            (f"pub-qos2-{name}", [pub("-V", v, "-q", "2", "-t", "a/b", "-m", "x" * 300, "-u", "user", "-P", "secret")]),
            (f"pub-will-{name}", [pub("-V", v, "-t", "a/b", "-m", "m", "--will-topic", "c/iot/P1_A1/presence",
                                      "--will-payload", "offline", "--will-qos", "1", "--will-retain", "-k", "30")]),
            (f"pub-empty-{name}", [pub("-V", v, "-t", "$aws/things/P1_A1_d1/shadow/update", "-n")]),
            (f"sub-{name}", [sub("-V", v, "-t", "c/xfi/P1_A1/#", "-t", "c/iot/+/+/presence", "-q", "2", "-c", "-i", "sub-" + name)]),
            (f"sub-many-{name}", [sub("-V", v, "-t", "a/+/b", "-t", "$SYS/#", "-t", "#", "-q", "1")]),
            (f"pub-lines-{name}", [pub("-V", v, "-t", "t/lines", "-l", "-q", "1")]),
        ]
    cases += [
        ("pub-props-v5", [pub("-V", "mqttv5", "-t", "a/b", "-m", "p", "-q", "1",
                              "-D", "publish", "user-property", "k", "v",
                              "-D", "publish", "content-type", "text/plain",
                              "-D", "publish", "response-topic", "r/t",
                              "-D", "publish", "correlation-data", "c0ffee",
                              "-D", "publish", "message-expiry-interval", "60",
                              "-D", "publish", "payload-format-indicator", "1",
                              "-D", "connect", "session-expiry-interval", "3600",
                              "-D", "connect", "receive-maximum", "10",
                              "-D", "connect", "maximum-packet-size", "65536",
                              "-D", "connect", "user-property", "app", "seed",
                              "-D", "connect", "topic-alias-maximum", "4",
                              "-D", "connect", "request-response-information", "1")]),
        ("sub-props-v5", [sub("-V", "mqttv5", "-t", "$share/g/c/+/x",
                              "-D", "subscribe", "subscription-identifier", "7",
                              "-D", "subscribe", "user-property", "k", "v",
                              "-D", "connect", "session-expiry-interval", "60")]),
        ("sub-unsubscribe-v5", [sub("-V", "mqttv5", "-t", "a/#", "-U", "a/#", "-E")]),
    ]
    return cases


def paho_script(port, version):
    return f"""
import time, paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
v = mqtt.MQTTv5 if {version!r} == 5 else mqtt.MQTTv311
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-{version}", protocol=v)
c.username_pw_set("mobile:P1:A1:J1", b"\\x00pw\\xff")
c.will_set("c/iot/P1_A1/presence", b"gone", qos=1, retain=True)
kw = {{}}
if v == mqtt.MQTTv5:
    p = Properties(PacketTypes.CONNECT); p.SessionExpiryInterval = 30; p.TopicAliasMaximum = 5
    kw["properties"] = p
c.connect("{HOST}", {port}, keepalive=5, **kw)
c.loop_start()
time.sleep(0.3)
c.subscribe([("c/xfi/P1_A1/c1/+/+/success", 1), ("c/xfi/P1_A1/c1/+/+/failure", 2)])
if v == mqtt.MQTTv5:
    from paho.mqtt.subscribeoptions import SubscribeOptions
    o = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True, retainHandling=2)
    c.subscribe("c/iot/P1_A1/+/presence", options=o)
for q in (0, 1, 2):
    if v == mqtt.MQTTv5:
        pp = Properties(PacketTypes.PUBLISH); pp.TopicAlias = 1; pp.UserProperty = ("k", "v")
        c.publish("c/xfi/P1_A1/lights/c1/r%d" % q, b"req", qos=q, properties=pp)
    else:
        c.publish("c/xfi/P1_A1/lights/c1/r%d" % q, b"req", qos=q)
time.sleep(0.5)
c.unsubscribe("c/xfi/P1_A1/c1/+/+/success")
time.sleep(0.3)
c.disconnect()
c.loop_stop()
"""


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/seeds/mqtt_decode"
    os.makedirs(out, exist_ok=True)
    broker_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {broker_port} {HOST}\nallow_anonymous true\npersistence false\n")
        broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            recorder = Recorder(broker_port)
            cases = mosquitto_clients(recorder.port)
            cases += [(f"paho-v{v}", [[sys.executable, "-c", paho_script(recorder.port, v)]]) for v in (311, 5)]
            written = 0
            for name, commands in cases:
                procs = []
                for cmd in commands:
                    stdin = subprocess.PIPE if "-l" in cmd else subprocess.DEVNULL
                    procs.append(subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
                for proc in procs:
                    if proc.stdin:
                        proc.stdin.write(b"line one\nline two\n")
                        proc.stdin.close()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                for i, session in enumerate(recorder.take()):
                    path = os.path.join(out, f"{name}-{i}.bin")
                    with open(path, "wb") as f:
                        f.write(session)
                    written += 1
            print(f"{written} sessions written to {out}")
        finally:
            broker.terminate()
            broker.wait(timeout=10)


if __name__ == "__main__":
    main()
