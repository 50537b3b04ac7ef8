#!/usr/bin/env bash
# Run a command inside a private network namespace whose only interface is loopback, so that servers which
# cannot bind to loopback alone (Orthanc listens on every interface) are reachable by nothing else.
# Needs root (or CAP_SYS_ADMIN). Inside, MEDSEARCH_IN_NETNS=1 tells the tests where they are.
set -euo pipefail
if [ "${MEDSEARCH_IN_NETNS:-}" = 1 ]; then
    exec "$@"
fi
exec unshare --net -- bash -c 'ip link set lo up && MEDSEARCH_IN_NETNS=1 exec "$@"' netns_run "$@"
