"""Frame extraction throughput: mvbench.video.extract_frames vs the ffmpeg command line.

Synthesises a 1280x720, 30-fps, 20-s h264 video, then for sampling rates of 1 and 2 fps writes
the sampled frames as JPEG with each installed backend of ours and with
``ffmpeg -i v.mp4 -vf fps=F -q:v 2 out/%06d.jpg``, in the same run. Prints frames written per
second and the ratio ours / ffmpeg (> 1: we are faster). Each figure is the best of ``--repeat``
runs, into a fresh folder each time; the machine and its load at the start are printed first.

    .venv/bin/python bench/frames.py [--seconds 20] [--gop 250] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from mvbench.video import available_backends, extract_frames, probe, sample_indices
from mvbench.video.synth import make_test_video, read_frame_number


def best_time(run: Callable[[Path], int], workdir: Path, repeat: int) -> tuple[float, int]:
    """Best wall time of ``repeat`` runs of ``run(fresh_out_dir)``, and the frames it wrote."""
    best, written = float("inf"), 0
    for _ in range(repeat):
        out = Path(tempfile.mkdtemp(dir=workdir))
        start = time.perf_counter()
        written = run(out)
        best = min(best, time.perf_counter() - start)
        shutil.rmtree(out)
    return best, written


def ffmpeg_run(video: Path, fps: float) -> Callable[[Path], int]:
    def run(out: Path) -> int:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(video), "-vf", f"fps={fps}",
                        "-q:v", "2", str(out / "%06d.jpg")], check=True)
        return len(list(out.iterdir()))
    return run


def ours_run(video: Path, indices: list[int], backend: str) -> Callable[[Path], int]:
    def run(out: Path) -> int:
        paths = extract_frames(video, indices, out, backend=backend)
        return len(set(paths))
    return run


def check_frames(video: Path, indices: list[int], backend: str, workdir: Path) -> None:
    """Fail loudly if a backend wrote wrong frames (a fast wrong answer is no result)."""
    out = Path(tempfile.mkdtemp(dir=workdir))
    for i, path in zip(indices, extract_frames(video, indices, out, backend=backend)):
        number = read_frame_number(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        if number != i:
            raise SystemExit(f"{backend}: {path} shows frame {number}, expected {i}")
    shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--gop", type=int, default=None, help="keyframe interval (default: x264's 250)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("needs the ffmpeg binary for the baseline")

    from _machine import describe  # bench/ is this script's folder

    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        video = make_test_video(workdir / "v.mp4", args.seconds, 30, 1280, 720, gop=args.gop)
        info = probe(video)
        print(f"video: {info.width}x{info.height} {info.fps:g} fps, {info.num_frames} frames, "
              f"gop {args.gop or 'default'}, {video.stat().st_size / 1e6:.1f} MB "
              f"(made in {time.perf_counter() - start:.1f} s)")
        print(f"{'sample fps':>10} {'extractor':>10} {'frames':>6} {'seconds':>8} {'frames/s':>9} {'ours/ffmpeg':>11}")
        for fps in (1.0, 2.0):
            indices = sample_indices(0.0, info.duration_s, fps, info.fps, info.num_frames)
            base_s, base_n = best_time(ffmpeg_run(video, fps), workdir, args.repeat)
            base_rate = base_n / base_s
            print(f"{fps:>10g} {'ffmpeg':>10} {base_n:>6} {base_s:>8.2f} {base_rate:>9.1f} {'1.00':>11}")
            for backend in available_backends():
                check_frames(video, indices, backend, workdir)
                secs, n = best_time(ours_run(video, indices, backend), workdir, args.repeat)
                print(f"{fps:>10g} {backend:>10} {n:>6} {secs:>8.2f} {n / secs:>9.1f} "
                      f"{(n / secs) / base_rate:>11.2f}")


if __name__ == "__main__":
    main()
