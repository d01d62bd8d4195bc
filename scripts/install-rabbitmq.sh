#!/bin/sh
# Installs Debian's rabbitmq-server (RabbitMQ with its MQTT and HTTP auth backend plugins,
# Erlang included) for the `topicguard authz` cluster test. Safe to run repeatedly: does
# nothing when it is installed. Waits for another apt run to finish rather than failing.
# The package's own service is never started (the test starts its nodes itself).
set -eu
if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    echo "rabbitmq-server already installed: $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo unknown)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
$APT update
$APT install -y --no-install-recommends rabbitmq-server
test -x /usr/lib/rabbitmq/bin/rabbitmq-server
