# The sip-harness image: the stub (`sip-harness serve`) and the suite runner (`sip-harness run`).
FROM python:3.11-slim-bookworm
RUN echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      sip-tester tshark libpcap0.8 espeak-ng libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sip-harness
COPY pyproject.toml README.md ./
COPY harness ./harness
RUN pip install --no-cache-dir .
COPY sip_profiles ./sip_profiles
# Capture as a non-root user: the interpreter gets CAP_NET_RAW (granted by `cap_add: [NET_RAW]`).
RUN setcap cap_net_raw+eip "$(readlink -f "$(command -v python3)")" \
 && useradd --create-home harness && mkdir -p /artifacts && chown harness /artifacts
USER harness
ENTRYPOINT ["sip-harness"]
CMD ["run", "sip_profiles", "--out", "/artifacts"]
