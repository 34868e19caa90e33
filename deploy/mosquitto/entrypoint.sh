#!/bin/sh
# Installs the password and ACL files that `safety-hub broker` wrote into the broker-config
# volume (one user per enterprise, the hub, the simulator), then runs the broker.
set -eu
for f in passwd acl; do
  if [ ! -s "/generated/$f" ]; then
    echo "entrypoint: /generated/$f is missing: the broker-init service must run first" >&2
    exit 1
  fi
done
cp /deploy/mosquitto.conf /mosquitto/config/mosquitto.conf
cp /generated/passwd /mosquitto/config/passwd
cp /generated/acl /mosquitto/config/acl
chown mosquitto:mosquitto /mosquitto/config/passwd /mosquitto/config/acl 2>/dev/null || true
chmod 0600 /mosquitto/config/passwd
chmod 0644 /mosquitto/config/acl
exec mosquitto -c /mosquitto/config/mosquitto.conf
