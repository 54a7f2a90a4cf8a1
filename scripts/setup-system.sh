#!/usr/bin/env bash
# Installs the Debian packages the harness uses as real peers and oracles, when missing.
# sipp comes from the package "sip-tester"; tshark must not ask about setuid capture.
set -euo pipefail
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # loads report.html in tests/integration/test_report.py
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)  # runs docker-compose.yml in tests/integration/test_compose.py
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)  # the engine those tests start when none runs
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)  # their local base image (`make image-base`)
command -v node >/dev/null 2>&1 || need+=(nodejs)  # runs Node.js handlers
command -v npm >/dev/null 2>&1 || need+=(npm)  # installs the AWS SDKs the Node.js runtimes bundle
[ -x /usr/sbin/kamailio ] || command -v kamailio >/dev/null 2>&1 || need+=(kamailio)  # serve --workers
ldconfig -p 2>/dev/null | grep -q 'libpcap\.so\.0\.8' || need+=(libpcap0.8)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
    exit 1
fi
echo "setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
# Packages with a service (kamailio) must not start it: the harness runs its own instances.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -n "$made_policy" ] && rm -f "$policy"
true
