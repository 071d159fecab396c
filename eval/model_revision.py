"""A cheap, content-derived revision of a local model folder, for backend fingerprints.

The response cache keys every answer on the backend's fingerprint, so retrained weights written
to the same folder (``OUT/final`` after a rerun) must change it. Hashing whole checkpoints
(16 GB for a 7B model) on every evaluation is too slow; file names and sizes alone cannot tell
two trainings apart. :func:`local_model_revision` hashes:

- ``config.json`` (parsed, so key order does not matter);
- each weight file's name, size and modification time (``st_mtime_ns``: a rewrite changes it,
  even where the sampled bytes below happen to agree, e.g. a few bf16 weights moved by a small
  learning rate);
- for ``*.safetensors``: the header (every tensor's name, dtype, shape and offsets) and, for
  every tensor, :data:`SAMPLE_BYTES` bytes at its start, middle and end, so that different
  weights give different revisions even when files are copied with their times preserved; other
  weight files (``*.bin``, ``*.pt``): :data:`FILE_SAMPLES` evenly spaced blocks.

That reads a few hundred kilobytes per checkpoint, whatever its size.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from mvbench.errors import InputError

SAMPLE_BYTES = 256
FILE_SAMPLES = 64
FILE_SAMPLE_BYTES = 64 * 1024
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
REVISION_CHARS = 16


def local_model_revision(model_dir: str | Path) -> str:
    """A short hex revision of a local model folder (see the module docstring).

    Args:
        model_dir: a checkpoint folder with ``config.json`` and weight files.

    Returns:
        :data:`REVISION_CHARS` hex digits.

    Raises:
        InputError: an unreadable config or weight file, or a malformed safetensors header (naming it).
    """
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    config = model_dir / "config.json"
    if config.is_file():
        try:
            parsed = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"unreadable config: {e}", path=config) from None
        digest.update(json.dumps(parsed, sort_keys=True, allow_nan=False).encode())
    for weights in sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        stat = weights.stat()
        digest.update(f"\0{weights.name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
        try:
            with open(weights, "rb") as f:
                if weights.suffix == ".safetensors":
                    _safetensors_samples(f, stat.st_size, digest)
                else:
                    _file_samples(f, stat.st_size, digest)
        except OSError as e:
            raise InputError(f"unreadable weights: {e}", path=weights) from None
        except ValueError as e:
            raise InputError(f"malformed safetensors file: {e}", path=weights) from None
    return digest.hexdigest()[:REVISION_CHARS]


def _safetensors_samples(f, size: int, digest) -> None:
    (header_len,) = struct.unpack("<Q", f.read(8))
    if header_len > size - 8:
        raise ValueError(f"header length {header_len} exceeds the file")
    header_bytes = f.read(header_len)
    digest.update(header_bytes)
    header = json.loads(header_bytes)
    base = 8 + header_len
    for name in sorted(k for k in header if k != "__metadata__"):
        begin, end = header[name]["data_offsets"]
        n = end - begin
        for offset in sorted({0, max(0, n // 2 - SAMPLE_BYTES // 2), max(0, n - SAMPLE_BYTES)}):
            f.seek(base + begin + offset)
            digest.update(f.read(min(SAMPLE_BYTES, n - offset)))


def _file_samples(f, size: int, digest) -> None:
    for offset in sorted({i * size // FILE_SAMPLES for i in range(FILE_SAMPLES)} | {max(0, size - FILE_SAMPLE_BYTES)}):
        f.seek(offset)
        digest.update(f.read(FILE_SAMPLE_BYTES))
