#!/bin/bash
# Runs once, after the influxdb:2.7 image's first setup (DOCKER_INFLUXDB_INIT_MODE=setup).
# 1. Refuses a bucket retention under 30 days (MEM rules: recorded data kept >= 30 days).
# 2. Maps the bucket for InfluxQL (DBRP: database = bucket name, retention policy autogen),
#    which the hub's history API and every Grafana panel query through /query.
set -euo pipefail

retention="${DOCKER_INFLUXDB_INIT_RETENTION:-0}"
seconds=0
if [[ "$retention" != "0" && "$retention" != "" ]]; then
  rest="$retention"
  while [[ -n "$rest" ]]; do
    if [[ "$rest" =~ ^([0-9]+)(w|d|h|m|s)(.*)$ ]]; then
      n="${BASH_REMATCH[1]}"; unit="${BASH_REMATCH[2]}"; rest="${BASH_REMATCH[3]}"
      case "$unit" in
        w) seconds=$((seconds + n * 604800)) ;;
        d) seconds=$((seconds + n * 86400)) ;;
        h) seconds=$((seconds + n * 3600)) ;;
        m) seconds=$((seconds + n * 60)) ;;
        s) seconds=$((seconds + n)) ;;
      esac
    else
      echo "safety-hub init: cannot read retention '$retention' (use e.g. 90d, 52w)" >&2
      exit 1
    fi
  done
  if (( seconds < 30 * 86400 )); then
    echo "safety-hub init: retention $retention is under 30 days (MEM rules: keep >= 30d)" >&2
    exit 1
  fi
fi

bucket_id="$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | awk 'NR==1 {print $1}')"
if ! influx v1 dbrp list --db "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | grep -q .; then
  influx v1 dbrp create \
    --db "${DOCKER_INFLUXDB_INIT_BUCKET}" --rp autogen --default \
    --bucket-id "$bucket_id"
fi
echo "safety-hub init: bucket ${DOCKER_INFLUXDB_INIT_BUCKET} (retention ${retention}, 0 = forever) mapped for InfluxQL"
