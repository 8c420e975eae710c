"""Video into models without copies: frames as planes, preprocessing inside the graph.

* :mod:`webml.media.frames`: plane layouts of I420, NV12 and packed RGB frames, checked;
* :mod:`webml.media.colour`: graph pieces (MLGraphBuilder) from planes to a model's input;
* :mod:`webml.media.pipeline`: :class:`FrameRunner`, a model fed frame after frame through
  :meth:`webml.MLContext.import_tensor`, with per-stage timings and counted host copies;
* :mod:`webml.media.video`: :class:`VideoSource`, frames of a video file or camera (PyAV).

See docs/media.md.
"""
