"""Video clips made at test time with PyAV from the sample photos: pans across each photo, cuts between them."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from webml.zoo.efficientnet_lite import sample_image_path

#: Photos the pretrained network names with a clear margin (coffee: espresso, camera: tripod, motorcycle: moped).
PHOTOS = ("coffee", "camera", "motorcycle_left")


def pan_frames(photo: str, count: int, width: int, height: int) -> list[np.ndarray]:
    """``count`` RGB frames of a window of 80% of the photo panning left to right, scaled to width x height."""
    image = Image.open(sample_image_path(photo)).convert("RGB")
    w, h = image.size
    win_w, win_h = int(w * 0.8), int(h * 0.8)
    frames = []
    for i in range(count):
        left = round((w - win_w) * i / max(1, count - 1))
        top = (h - win_h) // 2
        window = image.crop((left, top, left + win_w, top + win_h)).resize((width, height), Image.Resampling.BILINEAR)
        frames.append(np.asarray(window))
    return frames


def make_clip(
    path: Path,
    *,
    width: int = 320,
    height: int = 240,
    frames_per_photo: int = 6,
    rate: int = 8,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    photos: tuple[str, ...] = PHOTOS,
) -> list[np.ndarray]:
    """Write a clip of pans across ``photos`` (a cut between each) to ``path``; returns the RGB frames encoded."""
    rgb = [f for photo in photos for f in pan_frames(photo, frames_per_photo, width, height)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        for array in rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return rgb


def make_audio_only(path: Path) -> None:
    """A file with one audio track and no video."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(8000) / 10) * 0.3).astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
