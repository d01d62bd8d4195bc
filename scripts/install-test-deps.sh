#!/bin/sh
# Installs the third-party MQTT clients the broker's integration tests drive
# (Debian's mosquitto_pub / mosquitto_sub). Safe to run repeatedly; CI runs it first.
set -eu
if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
    echo "mosquitto-clients already installed: $(mosquitto_pub --help 2>/dev/null | sed -n 2p)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends mosquitto-clients
