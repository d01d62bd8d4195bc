#!/bin/sh
# Installs the third-party software the integration tests drive: Debian's mosquitto_pub /
# mosquitto_sub, Debian's mosquitto broker with the plugin headers it is built against
# (mosquitto-dev, libmosquitto-dev, and libssl-dev for OpenSSL's libcrypto), all from apt,
# Python's paho-mqtt (pip), and Debian's rabbitmq-server for the `topicguard authz` cluster
# test (scripts/install-rabbitmq.sh). Safe to run repeatedly: each is installed only when
# missing. CI runs it first.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1 \
    && { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; }; then
    echo "mosquitto and its clients already installed: $(mosquitto_pub --help 2>/dev/null | sed -n 2p)"
else
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
        mosquitto mosquitto-clients
fi
# The mosquitto plugin (plugins/mosquitto): the broker that loads it in the tests, the plugin
# headers its declarations are checked against, and libcrypto to link with.
if [ -x /usr/sbin/mosquitto ] && [ -f /usr/include/mosquitto_broker.h ] \
    && [ -f /usr/include/mosquitto_plugin.h ] && [ -f /usr/include/openssl/x509.h ]; then
    echo "mosquitto and its plugin headers already installed: $(/usr/sbin/mosquitto -h 2>/dev/null | sed -n 1p)"
else
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
        mosquitto mosquitto-dev libmosquitto-dev libssl-dev
fi
if python3 -c "import paho.mqtt.client" >/dev/null 2>&1; then
    echo "paho-mqtt already installed: $(python3 -c 'import paho.mqtt; print(paho.mqtt.__version__)')"
else
    if ! python3 -m pip --version >/dev/null 2>&1; then
        $SUDO apt-get update
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-pip
    fi
    # Debian's system Python refuses plain `pip install` (PEP 668); fall back to the flag.
    python3 -m pip install --user "paho-mqtt>=2,<3" 2>/dev/null \
        || python3 -m pip install "paho-mqtt>=2,<3" 2>/dev/null \
        || python3 -m pip install --break-system-packages "paho-mqtt>=2,<3"
    python3 -c "import paho.mqtt.client" || {
        echo "paho-mqtt installed but python3 still cannot import it" >&2
        exit 1
    }
fi
"$(dirname "$0")/install-rabbitmq.sh"
