"""How well the words on the wire are recognised: sentences rendered by Speak, decoded from
the capture, spotted with pocketsphinx (`harness.wire.words`).

A handler speaks each sentence with a Speak action (espeak-ng standing in for Polly), a
Pause of `--pause-ms` between them, then hangs up; a pjsua2 caller takes the call, the
capture is analysed, and the stub's stream to the caller is cut at the pauses into one piece
per sentence. Every piece is then searched for every sentence's text: a sentence found in its
own piece counts as found, a sentence found in another sentence's piece as falsely found.
The run's own `said:` check of all sentences, in order, is reported too. Prints one JSON object:

    .venv/bin/python bench/bench_speech.py [--sentences 25] [--pause-ms 900]
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

from harness.profiles.schema import load_profile  # noqa: E402
from harness.run.profile import ProfileRun  # noqa: E402
from harness.wire.analysis import analyze_pcap  # noqa: E402
from harness.wire.audio import stream_pcm  # noqa: E402
from harness.wire.words import Recognizer, speech_pieces  # noqa: E402

SENTENCES = [
    "thank you for calling", "please enter your account number", "your call is important to us",
    "press one for sales", "the office is closed today", "please hold while we connect you",
    "goodbye and have a nice day", "your balance is twenty dollars", "we did not understand your answer",
    "please say yes or no", "transferring you to an agent now", "the meeting starts at noon",
    "your payment was received", "enter the four digit pin", "this call may be recorded",
    "welcome to the help desk", "say the name of the city", "all our agents are busy",
    "please try again later", "your order has been shipped", "the weather will be sunny",
    "press the pound key when finished", "record your message after the tone",
    "you have three new messages", "good morning how can i help",
]
HANDLER = '''
SENTENCES = {sentences!r}
PER_RESPONSE = 4  # Speak + Pause pairs: a response holds 10 actions at most


def lambda_handler(event, context):
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    kind = event["InvocationEventType"]
    if kind not in ("NEW_INBOUND_CALL", "ACTION_SUCCESSFUL"):
        return {{"SchemaVersion": "1.0", "Actions": []}}
    done = int((event["CallDetails"].get("TransactionAttributes") or {{}}).get("spoken", "0"))
    actions = []
    for text in SENTENCES[done:done + PER_RESPONSE]:
        actions.append({{"Type": "Speak", "Parameters": {{"CallId": call_id, "Text": text.capitalize() + "."}}}})
        actions.append({{"Type": "Pause", "Parameters": {{"CallId": call_id, "DurationInMilliseconds": "{pause}"}}}})
    if done + PER_RESPONSE >= len(SENTENCES):
        actions.append({{"Type": "Hangup", "Parameters": {{"SipResponseCode": "0"}}}})
    return {{"SchemaVersion": "1.0", "Actions": actions,
             "TransactionAttributes": {{"spoken": str(done + PER_RESPONSE)}}}}
'''
PROFILE = '''name: speech benchmark
stub:
  handler: speak_all.py
  bucket_dir: bucket
steps:
  - call: {{to: "+14345550101"}}
  - wait: {{state: DISCONNECTED, timeout_ms: {timeout}}}
expect:
  said: {said}
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--pause-ms", type=int, default=900)
    args = parser.parse_args()
    sentences = SENTENCES[:args.sentences]
    work = Path(tempfile.mkdtemp(prefix="bench-speech-"))
    (work / "bucket").mkdir()
    (work / "speak_all.py").write_text(HANDLER.format(sentences=sentences, pause=args.pause_ms))
    (work / "profile.yaml").write_text(PROFILE.format(timeout=5000 * len(sentences), said=json.dumps(sentences)))
    started = time.monotonic()
    result = ProfileRun(load_profile(work / "profile.yaml"), work / "out", progress=lambda line: None).execute()
    wire = analyze_pcap(str(Path(result.run_dir) / "capture.pcap"))
    audio = [stream_pcm(s) for s in wire.rtp_streams]
    pcm, rate, _ = max(audio, key=lambda a: len(speech_pieces(a[0], a[1], args.pause_ms * 0.6)))
    tight = speech_pieces(pcm, rate, args.pause_ms * 0.6)
    cuts = [0] + [(a[1] + b[0]) // 2 for a, b in zip(tight, tight[1:])] + [len(pcm)]
    pieces = list(zip(cuts, cuts[1:]))  # each sentence with the halves of the pauses around it
    out = {"sentences": len(sentences), "pieces_on_the_wire": len(pieces), "run_verdict": result.verdict,
           "said_check": next((c.detail for c in result.checks if c.name == "said"), result.error),
           "run_seconds": round(time.monotonic() - started, 1)}
    if len(pieces) != len(sentences):
        out["error"] = "the stream did not cut into one piece per sentence"
        print(json.dumps(out, indent=2))
        sys.exit(1)
    recognizer = Recognizer()
    start = time.monotonic()
    missed, false = [], []
    for i, (a, b) in enumerate(pieces):
        for j, text in enumerate(sentences):
            found = recognizer.find_phrase(pcm[a:b], rate, text) is not None
            if i == j and not found:
                missed.append(text)
            elif i != j and found:
                false.append({"spoken": sentences[i], "found": text})
    pairs = len(sentences) * (len(sentences) - 1)
    out.update({
        "found_share": round(1 - len(missed) / len(sentences), 4), "missed": missed,
        "false_share": round(len(false) / pairs, 4), "false_pairs": pairs, "falsely_found": false,
        "speech_seconds": round(sum(b - a for a, b in tight) / rate, 1),
        "spotting_seconds": round(time.monotonic() - start, 1), "aim": {"found_share": 0.95, "false_share": 0.02}})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
