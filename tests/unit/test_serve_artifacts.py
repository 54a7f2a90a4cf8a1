"""`serve` files a transaction's folder whole: it appears under `transactions/` only once its
journal, capture and report are written, so a watcher never reads half a file."""
from __future__ import annotations

import json

import pytest

import harness.report
from harness import journal_entries as je
from harness.serve_artifacts import file_transaction

TX = "0b6f1d3a-5c2e-4f7a-9d8b-1e2f3a4b5c6d"


def entries() -> list[dict]:
    arrived = je.CallArrived(transaction_id=TX, sip_call_id="a@h", call_id="c-1",
                             sip_media_application_id="sma-1", to="+14345550101",
                             from_="+14255550199", rtp_port=31000)
    ended = je.SipEnded(transaction_id=TX, sip_call_id="a@h", by="remote", reason="BYE")
    return [arrived.to_json(time=100.0), ended.to_json(time=101.5),
            je.TransactionEnded(transaction_id=TX).to_json(time=101.6)]


def test_the_folder_appears_only_once_its_report_is_written(tmp_path, monkeypatch):
    folder = tmp_path / "transactions" / f"20261201-150000-{TX}"
    seen_while_writing = []
    real = harness.report.write_profile_reports

    def watching(result, wire, journal, run_dir, updates, prompts=None):
        seen_while_writing.append(sorted(p.name for p in folder.parent.iterdir()))
        return real(result, wire, journal, run_dir, updates, prompts)

    monkeypatch.setattr(harness.report, "write_profile_reports", watching)
    assert file_transaction(folder, entries(), None, 1, None) == folder
    assert seen_while_writing == [[f".{folder.name}.partial"]]  # not yet under its own name
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]
    report = json.loads((folder / "report.json").read_text())
    assert report["run_dir"] == str(folder)  # the report names the folder it ends up in
    assert {"report.html", "timeline.png", "journal.json"} <= {p.name for p in folder.iterdir()}


def test_a_failing_report_still_leaves_the_journal_in_place(tmp_path, monkeypatch):
    folder = tmp_path / "transactions" / f"20261201-150000-{TX}"

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(harness.report, "write_profile_reports", failing)
    with pytest.raises(OSError, match="No space"):
        file_transaction(folder, entries(), None, 1, None)
    assert json.loads((folder / "journal.json").read_text())[0]["transaction_id"] == TX
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]
