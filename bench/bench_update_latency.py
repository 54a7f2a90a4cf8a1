"""Update-to-wire latency: from the UpdateSipMediaApplicationCall request on the wire to the
first RTP packet of the new action's prompt, over many updates of one real pjsua2 call (each
update alternates the prompt, so every one is a switch).

Prints one JSON object: count, p50, p99, max (ms), all measured from the scapy capture.

    python bench/bench_update_latency.py [--updates 200] [--gap-ms 150]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from harness.caller import Caller  # noqa: E402
from harness.journal_view import JournalView  # noqa: E402
from harness.run.setup import api_client, free_rtp_range  # noqa: E402
from harness.wire.audio import load_prompts  # noqa: E402
from harness.sma.model import SipMediaApplication, SipRule  # noqa: E402
from harness.stub import Stub, StubConfig  # noqa: E402
from harness.wire.analysis import analyze_pcap  # noqa: E402
from harness.wire.capture import Capture  # noqa: E402
from harness.wire.audio import label_packets  # noqa: E402

BUCKET = ROOT / "sip_profiles" / "bucket"
PROMPTS = ("tone-440hz.wav", "tone-1000hz.wav")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--gap-ms", type=int, default=150)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-update-"))
    sma = SipMediaApplication("bench-sma", str(ROOT / "bench" / "handlers" / "alternate.py"), name="alternate")
    low, high = free_rtp_range(100)  # below the ephemeral ports, in a lane of this process
    config = StubConfig([sma], [SipRule("r", "ToPhoneNumber", "*", [(1, "bench-sma")])], BUCKET,
                        run_dir=work, rtp_port_range=(low, high))
    pcap = work / "capture.pcap"
    with Stub(config) as stub, Caller(workdir=work / "caller") as caller:
        capture = Capture(pcap, bpf=f"udp portrange {low}-{high} or tcp port {stub.api_port}")
        capture.start()
        call = caller.call(stub.sip_uri("+14345550101"))
        call.wait_for("CONFIRMED", timeout=10)
        arrival = JournalView(stub.journal_json()).arrivals()[0]
        tx = arrival.transaction_id
        client = api_client(stub, "us-east-1")
        time.sleep(0.5)
        for i in range(args.updates):
            client.update_sip_media_application_call(SipMediaApplicationId="bench-sma", TransactionId=tx,
                                                     Arguments={"prompt": PROMPTS[(i + 1) % 2]})
            time.sleep(args.gap_ms / 1000)
        call.hangup()
        call.wait_for("DISCONNECTED", timeout=10)
        time.sleep(0.2)
        capture.stop()
        rtp_port = arrival.rtp_port
    wire = analyze_pcap(str(pcap))
    stream = wire.streams(src=("127.0.0.1", rtp_port))[0]
    labels = label_packets(stream, load_prompts(BUCKET))
    requests = wire.update_requests(tx)
    latencies, failures = [], []
    for i, request in enumerate(requests):
        new = PROMPTS[(i + 1) % 2]
        until = requests[i + 1].ts_ns if i + 1 < len(requests) else float("inf")
        first = next((lab for lab in labels if request.ts_ns <= lab.ts_ns < until and lab.prompt == new), None)
        if first is None:
            failures.append(f"update {i}: {new} did not start before the next update")
        else:
            latencies.append((first.ts_ns - request.ts_ns) / 1e6)
    lat = np.array(latencies)
    print(json.dumps({"benchmark": "update_to_wire_latency", "updates": args.updates,
                      "measured": len(latencies), "failed": len(failures),
                      "p50_ms": round(float(np.percentile(lat, 50)), 2),
                      "p99_ms": round(float(np.percentile(lat, 99)), 2),
                      "max_ms": round(float(lat.max()), 2), "target_p99_ms": 25,
                      "first_failures": failures[:3]}))


if __name__ == "__main__":
    main()
