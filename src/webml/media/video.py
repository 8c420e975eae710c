"""Frames of a video file or a camera, decoded by FFmpeg's libraries through PyAV.

:class:`VideoSource` opens a file (only a regular file, read through a file
object so FFmpeg never interprets the name as a URL or protocol) or a
camera device (``/dev/video0`` with Video4Linux2; ``avfoundation:0`` on
macOS, ``dshow:video=NAME`` on Windows; any FFmpeg input device as
``FORMAT:NAME``), and yields PyAV ``VideoFrame`` objects in a format the
graph converts (:mod:`webml.media.frames`): I420, NV12 or packed RGB as the
decoder gives them, others (4:2:2, 4:4:4, 10-bit) converted to I420 once by
FFmpeg's swscale, which :attr:`VideoSource.conversions` counts.

Files from strangers: only the demuxers of common video containers are
allowed (FFmpeg's ``format_whitelist``; a playlist or concat file that would
open other files or URLs is refused), frames larger than
:data:`~webml.media.frames.MAX_SIDE` a side are refused before decoding, and
every failure is a :class:`VideoError` naming the source.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "not-a-video.mp4")
>>> _ = open(path, "w").write("hello")
>>> VideoSource(path)
Traceback (most recent call last):
...
webml.media.video.VideoError: '...not-a-video.mp4' is not a video FFmpeg can read (...)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from ..files import RefusedFileError, open_regular_file
from .frames import MAX_SIDE

__all__ = ["CONTAINERS", "DEVICE_FORMATS", "VideoError", "VideoSource"]

#: Demuxers a file may use (FFmpeg names): containers that hold their streams, never references to others.
CONTAINERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpegts",
    "mpeg",
    "flv",
    "ogg",
    "asf",
    "nut",
    "ivf",
    "h264",
    "hevc",
    "mjpeg",
    "gif",
    "image2pipe",
    "png_pipe",
    "jpeg_pipe",
)
#: FFmpeg input devices that a ``FORMAT:NAME`` source may name.
DEVICE_FORMATS = ("v4l2", "video4linux2", "avfoundation", "dshow", "x11grab", "gdigrab", "kmsgrab")
#: Pixel formats passed to the graph as they are (PyAV names); others are converted to yuv420p.
NATIVE_FORMATS = ("yuv420p", "yuvj420p", "nv12", "rgb24", "bgr24", "rgba", "bgra")


class VideoError(ValueError):
    """A video source that cannot be read: not a video, no video track, a refused file or device."""


def _device(source: str) -> tuple[str, str] | None:
    """(FFmpeg input format, device name) if ``source`` names a camera, else None."""
    if source.startswith("/dev/video"):
        return "v4l2", source
    head, sep, name = source.partition(":")
    if sep and head in DEVICE_FORMATS and name:
        return head, name
    return None


class VideoSource:
    """The video frames of a file or a camera; iterate :meth:`frames`.

    ``options``: FFmpeg options of a camera (``{"video_size": "640x480", "framerate": "30"}``).
    Close it (or use ``with``) to release the file or device.
    """

    def __init__(self, source: str | os.PathLike[str], *, options: dict[str, str] | None = None) -> None:
        import av

        self.source = os.fspath(source)
        self.conversions = 0  # frames FFmpeg converted to yuv420p (a host copy each)
        self.decoded = 0
        self.decode_seconds = 0.0
        self._file = None
        device = _device(self.source)
        try:
            if device is not None:
                fmt, name = device
                self.container = av.open(name, format=fmt, options=dict(options or {}))
            else:
                if options:
                    raise VideoError(f"{self.source!r}: options are for camera devices, not files")
                try:
                    self._file = open_regular_file(self.source)
                except FileNotFoundError:
                    raise VideoError(f"no such video file: {self.source!r}") from None
                except RefusedFileError as exc:
                    raise VideoError(str(exc)) from None
                self.container = av.open(self._file, options={"format_whitelist": ",".join(CONTAINERS)})
        except VideoError:
            self.close()
            raise
        except av.FFmpegError as exc:
            self.close()
            what = "a camera FFmpeg can open" if device else "a video FFmpeg can read"
            reason = getattr(exc, "strerror", None) or str(exc)
            raise VideoError(f"{self.source!r} is not {what} ({reason})") from None
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams}) or ["none"]
            self.close()
            raise VideoError(f"{self.source!r} has no video track (its streams: {', '.join(kinds)})")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame and slice threads of the decoder
        width, height = self.stream.codec_context.width, self.stream.codec_context.height
        if width > MAX_SIDE or height > MAX_SIDE:
            self.close()
            raise VideoError(f"{self.source!r}: its {width}x{height} frames exceed {MAX_SIDE} pixels a side")

    @property
    def width(self) -> int:
        return self.stream.codec_context.width

    @property
    def height(self) -> int:
        return self.stream.codec_context.height

    @property
    def frame_rate(self) -> Fraction | None:
        """Frames per second the stream declares (None if it does not)."""
        return self.stream.average_rate

    @property
    def frame_count(self) -> int | None:
        """Frames the container declares (None if it does not: cameras, some streams)."""
        return self.stream.frames or None

    def frames(self, every: int = 1) -> Iterator[Any]:
        """Every ``every``-th decoded frame as a PyAV VideoFrame (a format of :data:`NATIVE_FORMATS`).

        Frames that are skipped are still decoded (a codec needs them), but never converted.
        """
        import av

        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        index = 0
        decoder = self.container.decode(self.stream)
        while True:
            start = time.perf_counter()
            try:
                frame = next(decoder)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                raise VideoError(f"{self.source!r}: decoding failed at frame {index} ({exc})") from None
            if frame.width > MAX_SIDE or frame.height > MAX_SIDE:
                raise VideoError(f"{self.source!r}: frame {index} is {frame.width}x{frame.height}, over {MAX_SIDE}")
            keep = index % every == 0
            if keep and frame.format.name not in NATIVE_FORMATS:
                frame = frame.reformat(
                    format="yuv420p", width=frame.width - frame.width % 2, height=frame.height - frame.height % 2
                )
                self.conversions += 1
            self.decoded += 1
            self.decode_seconds += time.perf_counter() - start
            if keep:
                yield frame
            index += 1

    def close(self) -> None:
        container = getattr(self, "container", None)
        if container is not None:
            container.close()
            self.container = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
