#!/bin/sh
# The image's entrypoint: runs the command (sip-harness by default) unprivileged, as a user
# who can write the artifacts folder, whoever owns the folder the engine bind-mounts there.
#
# Started as root (the image's default), it drops to the folder's owner, so that a CI user's
# checkout keeps files it owns; when the folder belongs to root (the engine created it for a
# fresh clone), it hands the folder to the image's own user `harness` and drops to that user.
# Started as any other user (`user:` in compose, `docker run --user`, OpenShift) it only runs
# the command. Capture keeps working unprivileged: the interpreter carries CAP_NET_RAW.
set -eu
artifacts=${SIP_HARNESS_ARTIFACTS:-/artifacts}
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ] || ! command -v "$1" >/dev/null 2>&1; then
    set -- sip-harness "$@"
fi
if [ "$(id -u)" != 0 ]; then
    exec "$@"
fi
mkdir -p "$artifacts"
if [ "$(stat -c %u "$artifacts")" = 0 ]; then
    chown harness:harness "$artifacts" || {
        echo "sip-harness: cannot hand $artifacts to user harness (read-only mount?)" >&2
        exit 2
    }
fi
uid=$(stat -c %u "$artifacts")
gid=$(stat -c %g "$artifacts")
if [ "$uid" = "$(id -u harness)" ]; then
    export HOME=/home/harness
    exec setpriv --reuid=harness --regid=harness --init-groups -- "$@"
fi
export HOME="/tmp/home-$uid"
mkdir -p "$HOME" && chown "$uid:$gid" "$HOME"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
