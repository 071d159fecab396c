"""A planned instance: one question about one clip, before any frame is decoded.

Task generators (``mvbench.builders.generators``) turn canonical annotations into these; the
pipeline (``mvbench.builders.pipeline``) writes their frames and turns them into
:class:`mvbench.records.Record` rows with :func:`to_record`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from mvbench.builders.base import SourceBuilder, VideoMeta
from mvbench.records import Record
from mvbench.tasks import qa_type_for

FRAMES_DIR = "frames"


@dataclass
class PlannedInstance:
    """One task instance of one source video.

    Args:
        key: stable, unique key (``source/video/task/...``); the record uid derives from it.
        source / data_source: builder name and official data_source.
        task: task name (``TAG`` ... ``CVS``).
        video_id: the source video.
        clip_start_s / clip_end_s: the clip window in seconds of the source video.
        fps: sampling rate of the frame list.
        frame_indices: sampled frame numbers in the source's native frame index.
        question: the question text (preamble + phrasing), without ``<video>\\n``.
        struc_info: ground truth in the official ``struc_info`` shape.
        answer: the official answer string.
        generator: who wrote the answer (``template`` for annotation-derived drafts).
        rc_start_index / rc_bbox: RC only: the boxed start frame (native index) and its pixel box.
        covers: indices into ``VideoAnnotation.events`` whose segments this instance uses.
    """

    key: str
    source: str
    data_source: str
    task: str
    video_id: str
    clip_start_s: float
    clip_end_s: float
    fps: float
    frame_indices: list[int]
    question: str
    struc_info: Any
    answer: str
    generator: str = "template"
    rc_start_index: int | None = None
    rc_bbox: list[float] | None = None
    covers: list[int] = field(default_factory=list)

    @property
    def uid(self) -> str:
        """Stable unique id: ``<data_source>/<qa_type>/<sha1(key)[:16]>``."""
        digest = hashlib.sha1(self.key.encode("utf-8")).hexdigest()[:16]
        return f"{self.data_source}/{qa_type_for(self.task, self.generator)}/{digest}"


def fps_text(fps: float) -> str:
    """The metadata spelling of a sampling rate: ``0.5`` → ``"0.5"``, ``1`` → ``"1.0"``."""
    return repr(float(fps))


def frame_relpath(source: str, video_id: str, index: int) -> str:
    """Frame path relative to the output folder: ``frames/<source>/<video_id>/<index:06d>.jpg``."""
    return f"{FRAMES_DIR}/{source}/{video_id}/{int(index):06d}.jpg"


def official_names(inst: PlannedInstance, meta: VideoMeta | None = None) -> tuple[str, str]:
    """``(metadata video_id, id video part)`` as the published records spell them.

    From ``meta.attrs["metadata_video_id"]`` / ``meta.attrs["id_video"]`` when the builder sets
    them (CoPESD ``023521`` / ``023521_part0``), else the instance's video id for both.
    """
    attrs = meta.attrs if meta is not None else {}
    return (str(attrs.get("metadata_video_id") or inst.video_id), str(attrs.get("id_video") or inst.video_id))


def official_id(inst: PlannedInstance, builder: type[SourceBuilder], meta: VideoMeta | None = None) -> str:
    """The record ``id`` in the source's published style (not unique, as upstream).

    The style is the builder's ``id_style`` (:attr:`SourceBuilder.id_style`).
    """
    fps = fps_text(inst.fps)
    first, last = inst.frame_indices[0], inst.frame_indices[-1]
    video = official_names(inst, meta)[1]
    if builder.id_style == "ampersand_seconds":
        return f"{video}&&{inst.clip_start_s:.2f}&&{inst.clip_end_s:.2f}&&{fps}"
    if builder.id_style == "ampersand":
        return f"{video}&&{first}&&{last}&&{fps}"
    return f"{fps}${video}${first}${last}"


def official_metadata(inst: PlannedInstance, builder: type[SourceBuilder],
                      meta: VideoMeta | None = None) -> dict[str, str]:
    """``metadata`` with string values: video_id, fps, and the clip's start/end frame or time.

    Frames or time as the builder's ``clip_metadata`` says (:attr:`SourceBuilder.clip_metadata`).
    """
    out = {"video_id": official_names(inst, meta)[0], "fps": fps_text(inst.fps)}
    if builder.clip_metadata == "seconds":
        out["input_video_start_time"] = repr(round(inst.clip_start_s, 2))
        out["input_video_end_time"] = repr(round(inst.clip_end_s, 2))
    else:
        out["input_video_start_frame"] = str(inst.frame_indices[0])
        out["input_video_end_frame"] = str(inst.frame_indices[-1])
    return out


def to_record(inst: PlannedInstance, builder: type[SourceBuilder], meta: VideoMeta, split: str | None,
              builder_version: str) -> Record:
    """Turn a planned instance into a :class:`Record` (official fields + provenance).

    Args:
        inst: the instance.
        builder: its source's builder class (how the published records spell ``id`` and
            ``metadata``: ``id_style``, ``clip_metadata``).
        meta: its video (its id names the frame folder; ``attrs`` may rename it in ``metadata`` and
            ``id``, see :func:`official_names`).
        split: ``train`` / ``val`` / ``test``; ``train`` (the official flag) is ``split != "test"``.
            None leaves both unset (the pipeline decides splits once every video is read).
        builder_version: package + builder + prompt-hash version string.

    Returns:
        A record whose ``video`` paths are relative to the output folder.
    """
    video = [frame_relpath(inst.source, meta.video_id, i) for i in inst.frame_indices]
    rc_info = None
    if inst.task == "RC":
        rc_info = {"start_frame": frame_relpath(inst.source, meta.video_id, inst.rc_start_index),
                   "start_frame_bbox": inst.rc_bbox}
    return Record(
        conversations=[{"from": "human", "value": f"<video>\n{inst.question}"},
                       {"from": "gpt", "value": inst.answer}],
        video=video,
        metadata=official_metadata(inst, builder, meta),
        qa_type=qa_type_for(inst.task, inst.generator),
        data_source=inst.data_source,
        sampled_video_frames=list(inst.frame_indices),
        id=official_id(inst, builder, meta),
        train=None if split is None else split != "test",
        dataset_name=inst.data_source,
        struc_info=inst.struc_info,
        is_RC=inst.task == "RC",
        RC_info=rc_info,
        uid=inst.uid,
        task=inst.task,
        split=split,
        source_video=meta.video_id,
        frame_indices=list(inst.frame_indices),
        clip_start_s=round(inst.clip_start_s, 3),
        clip_end_s=round(inst.clip_end_s, 3),
        generator=inst.generator,
        builder_version=builder_version,
    )
