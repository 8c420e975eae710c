"""Video through webml.media: frames classified as their PNG exports are, planes shared not copied, bad input refused.

The clips are made at test time with PyAV (libx264) from the sample photos: pans across each photo and cuts
between them (tests/media_clips.py).
"""

from __future__ import annotations

import doctest
import json
import os

import av
import cv2
import numpy as np
import pytest

import webml
import webml.media.pipeline
import webml.media.video
from media_clips import make_audio_only, make_clip
from webml.cli import main
from webml.media.frames import layout_of
from webml.media.pipeline import FrameRunner
from webml.media.video import VideoError, VideoSource
from webml.zoo import efficientnet_lite


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("media") / "pans.mp4"
    make_clip(path, frames_per_photo=4)
    return path


@pytest.mark.parametrize("module", [webml.media.pipeline, webml.media.video])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_frames_get_the_top1_of_their_png_exports(clip, tmp_path, backend):
    context = webml.ml.create_context(backend=backend)
    with VideoSource(clip) as source:
        frames = list(source.frames())
    assert len(frames) == 12 and source.conversions == 0
    pngs = []
    for i, frame in enumerate(frames):  # the same decoded frames, converted to RGB by FFmpeg's swscale
        pngs.append(str(tmp_path / f"frame{i}.png"))
        frame.to_image().save(pngs[-1])
    from_frames = efficientnet_lite.classify(context, frames, top_k=1)
    from_pngs = efficientnet_lite.classify(context, pngs, top_k=1)
    assert [t[0][0] for t in from_frames] == [t[0][0] for t in from_pngs]
    # And the photos are what they are: cuts at frames 4 and 8.
    assert [t[0][0] for t in from_frames[::4]] == ["espresso", "tripod", "moped"]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_decoded_planes_are_shared_with_the_engine(clip, backend):
    context = webml.ml.create_context(backend=backend)
    with VideoSource(clip) as source:
        frame = next(source.frames())
        assert frame.planes[0].line_size >= frame.width  # the decoder's own padded rows
        for plane in frame.planes:
            tensor = context.import_tensor(plane)
            assert tensor.shares_memory
            assert context.data_pointer(tensor) == plane.buffer_ptr
    assert context.import_copies == 0


def _mean_colour(builder, x):
    return {"mean": builder.reduce_mean(x, axes=[2, 3])}


@pytest.mark.parametrize(
    "backend, copies_per_frame", [("onnxruntime", 0), ("openvino", 0), ("reference", 3), ("webgpu", 3)]
)
def test_runner_counts_every_host_copy(clip, backend, copies_per_frame):
    context = webml.ml.create_context(backend=backend)
    runner = FrameRunner(context, _mean_colour)
    with VideoSource(clip) as source:
        count = 0
        for frame in source.frames(every=3):
            got = runner.run(frame)["mean"][0]
            # The anchor: OpenCV's BT.601 conversion of the same planes (to_ndarray gives them stacked, I420).
            rgb = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420).astype(np.float64)
            np.testing.assert_allclose(got, rgb.mean(axis=(0, 1)), atol=0.5)  # OpenCV rounds each pixel
            count += 1
    assert count == 4 and source.decoded == 12 and source.conversions == 0
    assert runner.stats.frames == 4 and runner.stats.builds == 1
    assert runner.stats.upload_copies == copies_per_frame * count == context.import_copies


def test_cli_video_json(clip, capsys):
    status = main(["video", str(clip), "--json", "--every", "2", "--top-k", "2", "--backend", "onnxruntime"])
    assert status == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    frames, summary = lines[:-1], lines[-1]["summary"]
    assert [f["frame"] for f in frames] == list(range(6))
    assert frames[0]["top"][0][0] == "espresso" and len(frames[0]["top"]) == 2
    assert set(frames[0]["ms"]) == {"upload", "inference"}
    # The only host copies of a frame's pixels: the decoder's (2 frames decoded per classified one) and none on upload.
    assert all(f["host_copies"] == {"decoder": 2, "conversions": 0, "upload": 0} for f in frames[1:])
    assert summary["frames"] == 6 and summary["decoded"] == 12 and summary["host_copies"]["uploads"] == 0
    assert summary["fps"] > 0 and "frames: 6/6" in err


def test_cli_video_with_an_onnx_model(tmp_path, clip, capsys):
    """--model: an ONNX classifier with the frame pieces in front of its imported graph."""
    from onnx import TensorProto, helper

    # A "classifier" of the mean red, green and blue of a 32x32 NCHW image (so the answer is known).
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, 32, 32])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["scores"]),
        ],
        "means",
        [x],
        [y],
    )
    model = tmp_path / "means.onnx"
    model.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    argv = ["video", str(clip), "--model", str(model), "--labels", str(labels), "--normalize", "unit"]
    assert main([*argv, "--json", "--top-k", "3", "--max-frames", "2", "--backend", "onnxruntime"]) == 0
    frames = [json.loads(line) for line in capsys.readouterr().out.splitlines()][:-1]
    assert len(frames) == 2 and {label for label, _ in frames[0]["top"]} == {"red", "green", "blue"}
    with VideoSource(clip) as source:
        first = next(source.frames()).to_ndarray(format="rgb24").astype(np.float64) / 255
    means = dict(frames[0]["top"])  # softmax of the means (they do not sum to 1)
    expected = np.exp(first.mean(axis=(0, 1)))
    expected /= expected.sum()
    np.testing.assert_allclose([means["red"], means["green"], means["blue"]], expected, atol=5e-3)


def test_not_a_video(tmp_path, capsys):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not frames\n" * 20)
    with pytest.raises(VideoError, match="is not a video FFmpeg can read"):
        VideoSource(path)
    assert main(["video", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("webml: error: ") and "is not a video FFmpeg can read" in err and err.count("\n") == 1


def test_no_video_track(tmp_path, capsys):
    path = tmp_path / "tone.mp4"
    make_audio_only(path)
    with pytest.raises(VideoError, match="has no video track \\(its streams: audio\\)"):
        VideoSource(path)
    assert main(["video", str(path)]) == 2
    assert "has no video track" in capsys.readouterr().err


def test_missing_file_fifo_and_playlist_refused(tmp_path):
    with pytest.raises(VideoError, match="no such video file"):
        VideoSource(tmp_path / "nothing.mp4")
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(VideoError, match="named pipe"):
        VideoSource(fifo)
    playlist = tmp_path / "list.m3u8"  # would make FFmpeg open the URLs it lists
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/a.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(VideoError, match="is not a video FFmpeg can read"):
        VideoSource(playlist)


def test_a_camera_that_is_not_there(capsys):
    # No camera exists on these machines: the device path must still fail with one clear message.
    with pytest.raises(VideoError, match="'/dev/video99' is not a camera FFmpeg can open"):
        VideoSource("/dev/video99")
    assert main(["video", "v4l2:/dev/video98", "--max-frames", "1"]) == 2
    assert "is not a camera FFmpeg can open" in capsys.readouterr().err


def test_run_planes_takes_raw_rows_and_checks_them():
    from webml.media.frames import frame_layout

    context = webml.ml.create_context(backend="onnxruntime")
    runner = FrameRunner(context, _mean_colour)
    layout = frame_layout("NV12", 8, 4, [16, 8])
    y, uv = bytearray([235] * 64), bytes([128] * 16)  # limited-range white, rows of 16 and 8 bytes
    np.testing.assert_allclose(runner.run_planes(layout, [y, uv])["mean"][0], [255, 255, 255], atol=1e-3)
    with pytest.raises(ValueError, match="plane 'uv' has shape \\[15\\]"):
        runner.run_planes(layout, [y, bytes(15)])
    with pytest.raises(ValueError, match="NV12 frames have 2 planes, got 1"):
        runner.run_planes(layout, [y])


def test_odd_sized_i420_frame(capsys):
    context = webml.ml.create_context(backend="onnxruntime")
    frame = av.VideoFrame(63, 48, "yuv420p")
    with pytest.raises(ValueError, match="an I420 frame needs an even width and height .* got 63x48"):
        layout_of(frame)
    with pytest.raises(ValueError, match="even width and height"):
        FrameRunner(context, _mean_colour).run(frame)


def test_cli_bad_options(clip, capsys):
    for argv, message in [
        (["--every", "0"], "--every must be at least 1"),
        (["--labels", "x.txt"], "--labels goes with --model"),
        (["--camera-option", "novalue"], "--camera-option must be KEY=VALUE"),
        (["--camera-option", "video_size=640x480"], "options are for camera devices, not files"),
        (["--top-k", "1001"], "--top-k must be from 1 to 1000"),
    ]:
        assert main(["video", str(clip), *argv, "--backend", "onnxruntime", "-q"]) == 2
        err = capsys.readouterr().err
        assert message in err, err


def test_classify_takes_a_video_as_webml_video_does(clip, capsys):
    argv = [str(clip), "--top-k", "2", "--json", "--backend", "onnxruntime", "-q"]
    assert main(["classify", *argv]) == 0
    classified = capsys.readouterr().out.splitlines()
    assert main(["video", *argv]) == 0
    seen = capsys.readouterr().out.splitlines()
    frames = [json.loads(line) for line in classified if '"frame"' in line]
    with av.open(str(clip)) as container:
        assert len(frames) == sum(1 for _ in container.decode(video=0)) > 0
    assert [f["top"] for f in frames] == [json.loads(line)["top"] for line in seen if '"frame"' in line]
    assert main(["classify", str(clip), str(clip), "--backend", "onnxruntime"]) == 2
    assert "webml classify takes one video at a time" in capsys.readouterr().err


def test_a_444_clip_is_converted_once_and_counted(tmp_path):
    path = tmp_path / "444.mp4"
    make_clip(path, pix_fmt="yuv444p", frames_per_photo=2)
    context = webml.ml.create_context(backend="onnxruntime")
    runner = FrameRunner(context, _mean_colour)
    with VideoSource(path) as source:
        for frame in source.frames():
            assert frame.format.name == "yuv420p"  # swscale's one conversion, counted below
            got = runner.run(frame)["mean"][0]
            rgb = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420).astype(np.float64)
            np.testing.assert_allclose(got, rgb.mean(axis=(0, 1)), atol=0.5)
    assert source.decoded == source.conversions == 6 and runner.stats.upload_copies == 0


def test_full_range_mjpeg_frames_use_their_tags(tmp_path):
    """An MJPEG clip decodes to yuvj420p frames tagged BT.601 full range: converted as JPEG's YCbCr."""
    from webml.media.frames import colour_space_of

    path = tmp_path / "camera.avi"
    make_clip(path, codec="mjpeg", pix_fmt="yuvj420p", frames_per_photo=2)
    context = webml.ml.create_context(backend="onnxruntime")
    runner = FrameRunner(context, _mean_colour)
    with VideoSource(path) as source:
        frame = next(source.frames())
        assert colour_space_of(frame) == webml.media.frames.ColourSpace("bt601", "full")
        y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
        up = [np.repeat(np.repeat(c, 2, axis=0), 2, axis=1) for c in (u, v)]
        opencv = cv2.cvtColor(np.stack([y, up[1], up[0]], axis=-1), cv2.COLOR_YCrCb2RGB).astype(np.float64)
        np.testing.assert_allclose(runner.run(frame)["mean"][0], opencv.mean(axis=(0, 1)), atol=0.5)
    tagged = av.VideoFrame(64, 48, "yuv420p")
    tagged.colorspace = 1  # FFmpeg's AVCOL_SPC_BT709
    assert colour_space_of(tagged) == webml.media.frames.ColourSpace("bt709", "limited")
