#!/bin/sh
# Creates the password file from the compose secrets, then runs the broker.
set -eu
: "${MQTT_HUB_PASSWORD:?}" "${MQTT_SIMULATOR_PASSWORD:?}"
cp /deploy/mosquitto.conf /deploy/acl /mosquitto/config/
touch /mosquitto/config/passwd
mosquitto_passwd -b /mosquitto/config/passwd hub "$MQTT_HUB_PASSWORD"
mosquitto_passwd -b /mosquitto/config/passwd simulator "$MQTT_SIMULATOR_PASSWORD"
chown mosquitto:mosquitto /mosquitto/config/passwd /mosquitto/config/acl 2>/dev/null || true
chmod 0700 /mosquitto/config/passwd
exec mosquitto -c /mosquitto/config/mosquitto.conf
