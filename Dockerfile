# The sip-harness image: the stub (`sip-harness serve`), the suite runner (`sip-harness run`)
# and SIPp. `make image` builds it (see the README); a plain `docker build .` works where the
# build reaches PyPI.
#
# BASE_IMAGE: any Debian bookworm image with or without Python 3.11; the official Python
# image by default. Where no image registry is reachable, `make image-base` makes a local one
# with debootstrap. Layers run from slow and stable (Debian packages, Python dependencies) to
# the project's own files, so a change to the code rebuilds only the last two.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS system
ENV DEBIAN_FRONTEND=noninteractive
RUN echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections \
 && if command -v python3 >/dev/null; then python=""; else python="python3 python3-venv"; fi \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      sip-tester tshark libpcap0.8 espeak-ng nodejs kamailio libcap2-bin $python >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

# The Python dependencies from pyproject.toml, from the wheelhouse `make image` fills on the
# host when there is one (`pip install --no-index`), from PyPI otherwise. In a stage of their
# own, so that the wheels do not stay in the image.
FROM system AS dependencies
COPY pyproject.toml build/wheelhous[e] /tmp/deps/
RUN python3 -c "import tomllib; p = tomllib.load(open('/tmp/deps/pyproject.toml', 'rb')); \
print('\n'.join(p['build-system']['requires'] + p['project']['dependencies']))" > /tmp/requirements.txt \
 && if ls /tmp/deps/*.whl >/dev/null 2>&1; then index="--no-index --find-links /tmp/deps"; else index=""; fi \
 && /opt/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check $index -r /tmp/requirements.txt

FROM system
COPY --from=dependencies /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The AWS SDKs the Lambda runtimes bundle, where handlers find them (<venv>/lambda-sdks), as
# `make image` installs them on the host (build/lambda-sdks); a plain `docker build .` has none.
COPY README.md build/lambda-sdk[s] /opt/venv/lambda-sdks/
RUN rm /opt/venv/lambda-sdks/README.md \
 && if [ -d /opt/venv/lambda-sdks/python ]; then python3 -m compileall -q /opt/venv/lambda-sdks/python; fi
# Capture as an unprivileged user: the interpreter gets CAP_NET_RAW (`cap_add: [NET_RAW]`).
RUN setcap cap_net_raw+eip "$(readlink -f /opt/venv/bin/python3)" \
 && useradd --create-home harness \
 && mkdir -p /artifacts && chown harness:harness /artifacts
COPY scripts/container-entrypoint.sh /usr/local/bin/sip-harness-entrypoint
WORKDIR /opt/sip-harness
COPY pyproject.toml README.md ./
COPY harness ./harness
RUN pip install -q --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
 && rm -rf build ./*.egg-info
COPY sip_profiles ./sip_profiles
ENTRYPOINT ["sip-harness-entrypoint"]
CMD ["run", "sip_profiles", "--out", "/artifacts"]
