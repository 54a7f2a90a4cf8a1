"""A recording's WAV file on disk, whose header is true at every moment.

The file is created when the recording starts (a header for no samples), and disk space is
reserved ahead of the audio as it is recorded (`reserve`, Linux fallocate with KEEP_SIZE: the
file's length and header do not change), so a full disk is found while the recording runs,
not when it ends. `finish` writes the samples into that space, then the header that counts
them; if anything fails the file is cut back to a header for no samples.
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct
from pathlib import Path

import numpy as np

RATE = 8000
HEADER_BYTES = 44
_FORMAT_PCM = 1
_FALLOC_FL_KEEP_SIZE = 1


def wav_header(channels: int, data_bytes: int, rate: int = RATE) -> bytes:
    """The 44-byte header of 16-bit PCM WAV data of `data_bytes` bytes."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16,
                       _FORMAT_PCM, channels, rate, rate * 2 * channels, 2 * channels, 16,
                       b"data", data_bytes)


class _Fallocate:
    """libc's fallocate(2), or None where there is none."""

    call = None

    @classmethod
    def get(cls):
        if cls.call is None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fn = libc.fallocate
                fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
                cls.call = fn
            except (OSError, AttributeError):
                cls.call = False
        return cls.call or None


class WavFile:
    """The WAV file of one recording of `channels` 16-bit channels at 8 kHz."""

    def __init__(self, path: Path, channels: int):
        self.path, self.channels = Path(path), channels
        self.reserved = HEADER_BYTES
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.pwrite(self._fd, wav_header(channels, 0), 0)
        except OSError:
            self._close()
            raise

    @property
    def bytes_per_second(self) -> int:
        return RATE * 2 * self.channels

    def reserve(self, total_bytes: int) -> None:
        """Make sure the disk holds room for a file of `total_bytes`; OSError (ENOSPC) when
        it does not. Where the filesystem cannot reserve, nothing is reserved."""
        if total_bytes <= self.reserved or self._fd is None:
            return
        fallocate = _Fallocate.get()
        if fallocate is None:
            return
        if fallocate(self._fd, _FALLOC_FL_KEEP_SIZE, 0, total_bytes) != 0:
            code = ctypes.get_errno()
            if code in (errno.EOPNOTSUPP, errno.ENOSYS):
                self.reserved = float("inf")  # this filesystem cannot say in advance
                return
            raise OSError(code, f"{os.strerror(code)}: reserving {total_bytes} bytes", str(self.path))
        self.reserved = total_bytes

    def finish(self, pcm: np.ndarray) -> None:
        """Write the samples and the header that counts them; on failure the file is cut
        back to a header for no samples and the error raised."""
        data = np.asarray(pcm, dtype="<i2").tobytes()
        try:
            os.pwrite(self._fd, data, HEADER_BYTES)
            os.ftruncate(self._fd, HEADER_BYTES + len(data))
            os.pwrite(self._fd, wav_header(self.channels, len(data)), 0)
        except OSError:
            self.abandon()
            raise
        self._close()

    def abandon(self) -> None:
        """Leave the file as a true WAV of no samples (what a failed recording keeps), as
        far as the file still lets itself be written; never raises."""
        if self._fd is None:
            return
        try:
            try:
                os.ftruncate(self._fd, HEADER_BYTES)
                os.pwrite(self._fd, wav_header(self.channels, 0), 0)
            except OSError:
                os.ftruncate(self._fd, 0)  # not even a header: an empty file, not a lying one
        except OSError:
            pass  # the descriptor itself is broken: nothing more can be done with it
        finally:
            self._close(quiet=True)

    def _close(self, quiet: bool = False) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                if not quiet:
                    raise


def repair_header(path: Path, channels: int | None = None, rate: int = RATE) -> bool:
    """Make the sizes in a WAV file's header agree with the file, as its writer would have
    when closing it (one killed mid-call leaves RIFF and data sizes of 0). The samples are
    those on disk, a trailing partial sample frame dropped. True when the header changed.

    A file that is not RIFF/WAVE is left alone, unless `channels` says how its writer wrote
    it and its first 44 bytes are all zeros: a writer whose first buffer the disk refused
    left them so, and they get a 16-bit PCM header of `channels` at `rate`."""
    with open(path, "r+b") as f:
        head = f.read(HEADER_BYTES)
        size = os.fstat(f.fileno()).st_size
        if channels is not None and size >= HEADER_BYTES and head == bytes(HEADER_BYTES):
            data = (size - HEADER_BYTES) // (2 * channels) * (2 * channels)
            f.truncate(HEADER_BYTES + data)
            f.seek(0)
            f.write(wav_header(channels, data, rate))
            return True
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        offset, block = 12, 2
        while offset + 8 <= size:
            f.seek(offset)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"fmt ":
                fmt = f.read(16)
                if len(fmt) == 16:
                    block = max(1, struct.unpack("<HHIIHH", fmt)[4])
            elif chunk == b"data":
                data = (size - offset - 8) // block * block
                if (length, os.fstat(f.fileno()).st_size) == (data, offset + 8 + data) and \
                        struct.unpack("<I", head[4:8])[0] == offset + data:
                    return False
                f.truncate(offset + 8 + data)
                f.seek(offset + 4)
                f.write(struct.pack("<I", data))
                f.seek(4)
                f.write(struct.pack("<I", offset + data))
                return True
            offset += 8 + length + (length & 1)
        return False
