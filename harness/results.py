"""What a profile's run comes to: its checks (each expectation and what was observed) and its
verdict. The runner fills them in; the reports, the command and the plugin read them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Check:
    """One expectation and what was observed."""

    name: str
    passed: bool
    detail: str
    measured: dict = field(default_factory=dict)


@dataclass
class ProfileResult:
    """One profile's run: its verdict, checks, error and root causes, and where its artifacts are."""

    profile: str
    path: str
    run_dir: str
    verdict: str = "error"  # pass, fail or error
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    update_to_switch_ms: float | None = None
    #: what went wrong, from the journal (`journal_view.Problem.to_json()`), in time order
    problems: list[dict] = field(default_factory=list)
    #: the traceback of an error the harness did not expect (a bug to report)
    error_detail: str | None = None

    def to_json(self) -> dict:
        return asdict(self)
