"""The callers' recordings: WAV files pjmedia's writer makes, mono 16-bit at the conference
bridge's clock rate, and how one it could not finish is put right. No pjsua2 here: the
parent process repairs the files of a worker that died."""
from __future__ import annotations

from pathlib import Path

from harness.media.wavfile import repair_header

CLOCK_RATE = 8000  # the conference bridge's, and so every recording's


def finish_recording(path: str | Path) -> None:
    """Make a closed recording's header agree with its length. A worker killed mid-call leaves
    sizes of 0; on a full disk pjmedia's writer leaves sizes of 0, or no header at all when
    its first buffer was refused (the refused stretches read as zeros: silence where the
    audio was lost). Most tools cannot read such a file. A missing file is left alone."""
    try:
        repair_header(Path(path), channels=1, rate=CLOCK_RATE)
    except OSError:
        pass  # gone or unreadable: nothing to put right
