#!/bin/sh
# Registers the namespace the services use (retention: how long Temporal keeps a closed workflow's
# history; the event store is the record and keeps everything). Idempotent.
set -eu
: "${TEMPORAL_ADDRESS:?}"
namespace="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    echo "waiting for Temporal at $TEMPORAL_ADDRESS"
    sleep 2
done
temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$namespace" >/dev/null 2>&1 ||
    temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$namespace" \
        --retention "${TEMPORAL_RETENTION:-720h}"
