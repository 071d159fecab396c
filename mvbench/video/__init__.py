"""Video I/O: probe and decode videos or frame folders, choose frame indices, write frames.

Typical use::

    info = probe("clip.mp4")
    idx = sample_indices(0.0, info.duration_s, fps=1, native_fps=info.fps, num_frames=info.num_frames)
    paths = extract_frames("clip.mp4", idx, frame_path(root, "AVOS", "clip", 0).parent)
"""

from mvbench.video.frames import extract_frames, frame_path, write_jpeg_atomic
from mvbench.video.readers import (
    BACKENDS,
    ImageSequence,
    VideoInfo,
    VideoReader,
    available_backends,
    open_video,
    probe,
    resolve_backend,
)
from mvbench.video.sampling import index_to_time, pad_even, sample_indices, sample_times, time_to_index

__all__ = [
    "BACKENDS",
    "ImageSequence",
    "VideoInfo",
    "VideoReader",
    "available_backends",
    "extract_frames",
    "frame_path",
    "index_to_time",
    "open_video",
    "pad_even",
    "probe",
    "resolve_backend",
    "sample_indices",
    "sample_times",
    "time_to_index",
    "write_jpeg_atomic",
]
