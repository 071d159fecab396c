"""The MedVidBench record: every official field, plus mvbench's provenance fields.

Official fields (``medvidbench-format.md`` §2 and the real records in ``shared/data``) are kept
exactly, so an official JSON file imports and exports losslessly, key order included:

- ``conversations`` (human turn, plus a gpt turn in train/val files), ``video`` (frame paths),
  ``sampled_video_frames`` (source frame numbers), ``id`` (either published style: not unique),
  ``train``, ``data_source``, ``dataset_name``, ``metadata`` (string values; start/end frames, or
  NurViD's start/end times), ``qa_type``, ``struc_info`` (present or absent), ``is_RC``, ``RC_info``.

mvbench's own fields: ``uid`` (stable and unique), ``split``, ``source_video``, ``frame_indices``
(the sampled frame numbers in the source's own frame index), ``clip_start_s``/``clip_end_s``,
``generator`` (``template`` for annotation-derived drafts, ``official`` for imported records, else
the id of the model that wrote the answer, e.g. ``gpt-4.1``; see :func:`check_generator`),
``validation`` (scores of the validation step), ``builder_version`` and ``task``.

In Arrow/Parquet the heterogeneous nested official values (``metadata``, ``struc_info``,
``RC_info``, ``validation`` and unknown extra keys) are stored as JSON text, which keeps their key
order and int/float distinction; ``official_keys`` records which top-level keys the official
record had and in which order (``struc_info`` is absent from test records, for example).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from mvbench import strict_json
from mvbench.errors import InputError

SCHEMA_VERSION = "1"

# Key order of the published test records; train/val records insert struc_info before qa_type.
OFFICIAL_KEY_ORDER: tuple[str, ...] = (
    "sampled_video_frames", "video", "conversations", "id", "train", "data_source", "metadata",
    "is_RC", "RC_info", "struc_info", "qa_type", "dataset_name",
)
REQUIRED_OFFICIAL_KEYS = ("conversations", "video", "metadata", "qa_type", "data_source")
# Who wrote a record's answer: one of the fixed names, or a model id (models are configurable, so
# any well-formed id is accepted). The published benchmark's answers were written by these two.
FIXED_GENERATORS = ("template", "official")
PUBLISHED_GENERATORS = ("gpt-4.1", "gemini-2.5-flash")
GENERATORS = FIXED_GENERATORS + PUBLISHED_GENERATORS
_MAX_GENERATOR_LEN = 200
SPLITS = ("train", "val", "test")

# Official data_source spellings; the page and the figure also use these aliases.
DATA_SOURCES = ("AVOS", "CholecT50", "CholecTrack20", "Cholec80_CVS", "CoPESD", "EgoSurgery",
                "JIGSAWS", "NurViD")
DATA_SOURCE_ALIASES = {"Cholec80-CVS": "Cholec80_CVS", "Cholec80CVS": "Cholec80_CVS"}

_JSON_COLUMNS = ("metadata", "struc_info", "RC_info", "validation", "extra")

ARROW_SCHEMA = pa.schema([
    # official fields
    pa.field("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())])),
             nullable=False),
    pa.field("video", pa.list_(pa.string()), nullable=False),
    pa.field("sampled_video_frames", pa.list_(pa.int64())),
    pa.field("id", pa.string()),
    pa.field("train", pa.bool_()),
    pa.field("data_source", pa.string(), nullable=False),
    pa.field("dataset_name", pa.string()),
    pa.field("metadata", pa.string(), nullable=False),
    pa.field("qa_type", pa.string(), nullable=False),
    pa.field("struc_info", pa.string()),
    pa.field("is_RC", pa.bool_()),
    pa.field("RC_info", pa.string()),
    pa.field("extra", pa.string()),
    pa.field("official_keys", pa.list_(pa.string()), nullable=False),
    # mvbench fields
    pa.field("uid", pa.string(), nullable=False),
    pa.field("task", pa.string(), nullable=False),
    pa.field("split", pa.string()),
    pa.field("source_video", pa.string()),
    pa.field("frame_indices", pa.list_(pa.int64())),
    pa.field("clip_start_s", pa.float64()),
    pa.field("clip_end_s", pa.float64()),
    pa.field("fps", pa.float64()),
    pa.field("generator", pa.string()),
    pa.field("validation", pa.string()),
    pa.field("builder_version", pa.string()),
], metadata={b"mvbench_schema_version": SCHEMA_VERSION.encode()})


def canonical_json(obj: Any) -> str:
    """Compact strict JSON with sorted keys: the form every content hash in mvbench is taken over."""
    return strict_json.dumps(obj, sort_keys=True, separators=(",", ":"))


def normalise_data_source(name: str) -> str:
    """Map the published spellings of a source name to the official ``data_source`` value."""
    return DATA_SOURCE_ALIASES.get(name, name)


@dataclass
class Record:
    """One benchmark instance: an official MedVidBench record plus mvbench provenance."""

    conversations: list[dict[str, str]]
    video: list[str]
    metadata: dict[str, str]
    qa_type: str
    data_source: str
    sampled_video_frames: list[int] | None = None
    id: str | None = None
    train: bool | None = None
    dataset_name: str | None = None
    struc_info: Any = None
    is_RC: bool = False
    RC_info: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    official_keys: list[str] = field(default_factory=list)
    uid: str = ""
    task: str = ""
    split: str | None = None
    source_video: str | None = None
    frame_indices: list[int] | None = None
    clip_start_s: float | None = None
    clip_end_s: float | None = None
    generator: str = "template"
    validation: dict | None = None
    builder_version: str | None = None

    def __post_init__(self) -> None:
        from mvbench.tasks import task_for_qa_type

        if not self.task:
            self.task = task_for_qa_type(self.qa_type).name
        if not self.official_keys:
            self.official_keys = [k for k in OFFICIAL_KEY_ORDER
                                  if k != "struc_info" or self.struc_info is not None]
        if not self.uid:
            self.uid = self.default_uid()

    # ----- derived views -------------------------------------------------------------------
    @property
    def question(self) -> str:
        """The human turn without the ``<video>\\n`` prefix (the prompt the model sees)."""
        value = self.conversations[0]["value"] if self.conversations else ""
        return value[len("<video>\n"):] if value.startswith("<video>\n") else value

    @property
    def answer(self) -> str | None:
        """The gpt turn (ground-truth answer), or None in a test file without answers."""
        for turn in self.conversations[1:]:
            if turn.get("from") == "gpt":
                return turn.get("value")
        return None

    @property
    def fps(self) -> float | None:
        """The sampling rate of ``video`` (``metadata.fps``) as a float."""
        try:
            return float(self.metadata["fps"])
        except (KeyError, TypeError, ValueError):
            return None

    def merged(self, answer: str) -> dict:
        """The official evaluator's merged form of this record answered by ``answer``:
        ``{metadata, qa_type, struc_info, question, gnd, answer, data_source}``."""
        return {"metadata": self.metadata, "qa_type": self.qa_type,
                "struc_info": self.struc_info if self.has_struc_info else [],
                "question": self.question, "gnd": self.answer or "", "answer": answer,
                "data_source": self.data_source}

    @property
    def has_struc_info(self) -> bool:
        """Whether the official record carries a ``struc_info`` key at all."""
        return "struc_info" in self.official_keys

    def default_uid(self) -> str:
        """A stable id from content: source, qa_type, official id and a hash of question and frames.

        The official ``id`` is not unique (several questions share one clip), hence the hash.
        """
        digest = hashlib.sha1(canonical_json(
            [self.data_source, self.qa_type, self.id, self.question, self.video[:1], self.video[-1:],
             self.RC_info]).encode()).hexdigest()[:12]
        return f"{self.data_source}/{self.qa_type}/{digest}"

    # ----- official JSON -------------------------------------------------------------------
    @classmethod
    def from_official(cls, obj: dict, *, path: str | Path | None = None, index: int | None = None,
                      **ours: Any) -> "Record":
        """Import one record of an official MedVidBench JSON file.

        Args:
            obj: the record as parsed from JSON.
            path / index: where it came from, named in errors.
            ours: mvbench fields to set (``split``, ``uid``, ...).

        Raises:
            InputError: a required key is missing or a field has the wrong type.
        """
        where = index if index is not None else obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(obj, dict):
            raise InputError(f"record is a {type(obj).__name__}, expected an object", path, where)
        missing = [k for k in REQUIRED_OFFICIAL_KEYS if k not in obj]
        if missing:
            raise InputError(f"record lacks official key(s) {missing}", path, where)
        _check_official_types(obj, path, where)
        known = set(OFFICIAL_KEY_ORDER)
        extra = {k: v for k, v in obj.items() if k not in known}
        kwargs = {k: obj[k] for k in OFFICIAL_KEY_ORDER if k in obj}
        kwargs.setdefault("is_RC", False)
        from mvbench.tasks import task_for_qa_type
        try:
            task_for_qa_type(obj["qa_type"])
        except KeyError as e:
            raise InputError(str(e.args[0]), path, where) from None
        start, end = _clip_seconds(obj["metadata"])
        ours.setdefault("generator", "official")
        ours.setdefault("clip_start_s", start)
        ours.setdefault("clip_end_s", end)
        ours.setdefault("frame_indices", obj.get("sampled_video_frames"))
        ours.setdefault("source_video", obj["metadata"].get("video_id"))
        if "train" in obj and "split" not in ours:
            ours["split"] = "train" if obj["train"] else "test"
        return cls(**kwargs, extra=extra, official_keys=list(obj.keys()), **ours)

    def to_official(self) -> dict:
        """Export the official fields, in the key order of the record this came from."""
        out: dict[str, Any] = {}
        for key in self.official_keys:
            if key in self.extra:
                out[key] = self.extra[key]
            else:
                out[key] = getattr(self, key)
        return out

    # ----- Arrow rows ----------------------------------------------------------------------
    def to_row(self) -> dict[str, Any]:
        """A dict matching :data:`ARROW_SCHEMA` (nested official values as JSON text)."""
        row: dict[str, Any] = {}
        for f in ARROW_SCHEMA:
            name = f.name
            if name == "fps":
                row[name] = self.fps
            elif name in _JSON_COLUMNS:
                value = getattr(self, name)
                if name == "struc_info" and not self.has_struc_info:
                    row[name] = None
                elif name == "extra":
                    row[name] = strict_json.dumps(value) if value else None
                elif name == "metadata":
                    row[name] = strict_json.dumps(value)
                else:
                    row[name] = None if value is None else strict_json.dumps(value)
            else:
                row[name] = getattr(self, name)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Record":
        """Inverse of :meth:`to_row`."""
        kwargs = {k: v for k, v in row.items() if k in _FIELD_NAMES and k not in _JSON_COLUMNS}
        kwargs["metadata"] = json.loads(row["metadata"])
        kwargs["extra"] = json.loads(row["extra"]) if row.get("extra") else {}
        for name in ("RC_info", "validation"):
            kwargs[name] = json.loads(row[name]) if row.get(name) is not None else None
        keys = list(row["official_keys"])
        kwargs["official_keys"] = keys
        kwargs["struc_info"] = (json.loads(row["struc_info"])
                                if "struc_info" in keys and row.get("struc_info") is not None else None)
        kwargs["conversations"] = [dict(t) for t in row["conversations"]]
        kwargs["video"] = list(row["video"])
        for name in ("sampled_video_frames", "frame_indices"):
            if kwargs.get(name) is not None:
                kwargs[name] = list(kwargs[name])
        return cls(**kwargs)

    def validate(self) -> None:
        """Check the record against the schema's rules; raise InputError naming the uid if not."""
        _check_official_types(self.to_official() | {"metadata": self.metadata}, None, self.uid)
        problem = check_generator(self.generator)
        if problem:
            raise InputError(problem, None, self.uid)
        if self.generator == "template" and self.qa_type.endswith(("_gpt", "_gemini")):
            raise InputError(f"qa_type {self.qa_type!r} names a model writer but generator is 'template'",
                             None, self.uid)
        if self.split is not None and self.split not in SPLITS:
            raise InputError(f"split {self.split!r} not in {SPLITS}", None, self.uid)
        if self.is_RC and not (isinstance(self.RC_info, dict)
                               and {"start_frame", "start_frame_bbox"} <= set(self.RC_info)):
            raise InputError("is_RC is true but RC_info lacks start_frame/start_frame_bbox", None,
                             self.uid)
        pa.Table.from_pylist([self.to_row()], schema=ARROW_SCHEMA)


_FIELD_NAMES = set(Record.__dataclass_fields__)


def check_generator(name: object) -> str | None:
    """Why ``name`` is not a valid ``generator`` value, or None if it is.

    Valid: ``template``, ``official``, or a model id (non-empty, at most 200 characters, no
    whitespace or control characters), e.g. ``gpt-4.1-2025-04-14`` or ``Qwen/Qwen2.5-VL-72B-Instruct``.

    >>> check_generator("gemini-2.5-flash") is None, check_generator("my model")
    (True, "generator 'my model' must be 'template', 'official' or a model id without whitespace")
    """
    if (not isinstance(name, str) or not name or len(name) > _MAX_GENERATOR_LEN
            or any(c.isspace() or not c.isprintable() for c in name)):
        return (f"generator {name!r} must be 'template', 'official' or a model id without whitespace")
    return None


def _safe_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _clip_seconds(metadata: dict) -> tuple[float | None, float | None]:
    """Clip window in seconds when the metadata says so directly (NurViD's start/end times)."""
    start = _safe_float(metadata.get("input_video_start_time"))
    end = _safe_float(metadata.get("input_video_end_time"))
    return start, end


def _check_official_types(obj: dict, path: str | Path | None, where: Any) -> None:
    def bad(msg: str) -> InputError:
        return InputError(msg, path, where)

    conv = obj.get("conversations")
    if not isinstance(conv, list) or not conv or not all(
            isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str)
            for t in conv):
        raise bad("conversations must be a non-empty list of {from, value} strings")
    if conv[0]["from"] != "human":
        raise bad("the first conversation turn must be from 'human'")
    video = obj.get("video")
    if not isinstance(video, list) or not all(isinstance(p, str) for p in video):
        raise bad("video must be a list of frame paths")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise bad("metadata must be an object")
    non_str = [k for k, v in meta.items() if not isinstance(v, str)]
    if non_str:
        raise bad(f"metadata values must be strings; not so for {non_str}")
    frames = obj.get("sampled_video_frames")
    if frames is not None and not (isinstance(frames, list)
                                   and all(isinstance(i, int) and not isinstance(i, bool)
                                           for i in frames)):
        raise bad("sampled_video_frames must be a list of integers")
    for key in ("train", "is_RC"):
        if obj.get(key) is not None and not isinstance(obj[key], bool):
            raise bad(f"{key} must be true or false")
    if obj.get("RC_info") is not None and not isinstance(obj["RC_info"], dict):
        raise bad("RC_info must be an object or null")
    for key in ("qa_type", "data_source"):
        if not isinstance(obj.get(key), str):
            raise bad(f"{key} must be a string")
    non_finite = strict_json.non_finite_paths(obj)
    if non_finite:  # Python's json reads NaN/Infinity; no record may carry them into what we write
        raise bad(f"non-finite number (NaN or Infinity is not JSON) at {', '.join(non_finite[:5])}")
