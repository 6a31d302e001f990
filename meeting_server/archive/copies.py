"""Every seat's annotated copies for the archive, made in this process and one helper process.

The archive job runs in a Huey process worker, which is a daemonic multiprocessing child
and may not start multiprocessing children; so the helper is a plain subprocess
(``python -m meeting_server.archive.copies JOBS.pickle RESULTS.jsonl``). Both take copies from one list,
this process from the front and the helper from the back, by creating a claim file with
``O_EXCL`` (each copy is made once, nobody waits on work the other has not started).
The helper reports each finished copy as a JSON line in its result file; copies it
claimed but did not report (it crashed or was killed) are made here at the end.
PyMuPDF is not thread-safe: processes, never threads.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Fewer copies than this are made here alone: starting the helper (Python + PyMuPDF) costs
#: about as much as a few copies.
MIN_COPIES_FOR_HELPER = 6
#: The most the helper may take after this process has finished its share (a bound, not a target).
HELPER_TIMEOUT = 900.0


def _claim(folder: Path, index: int, who: str) -> bool:
    try:
        fd = os.open(folder / f"claim-{index:06d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(who)
    return True


def _make(job: dict[str, Any]) -> dict[str, Any]:
    """One copy; an invalid annotation is reported, not raised (the copy is listed under errors).

    The annotations are ``items`` (dicts) or ``raw`` (``(page, kind, data JSON)``, decoded here).
    """
    from ..documents import render  # only PyMuPDF and Pillow: the helper starts fast

    Path(job["target"]).parent.mkdir(parents=True, exist_ok=True)
    if "items" in job:
        items = job["items"]
    else:  # as annotations.service.decode_items, without importing the database layer
        items = [{"page": page, "kind": kind, **json.loads(data)} for page, kind, data in job["raw"]]
    try:
        size = render.write_annotated(job["pdf"], items, job["author"], job["target"])
    except render.DocumentError as e:
        return {"index": job["index"], "error": e.message}
    return {"index": job["index"], "size": size}


def _take(folder: Path, jobs: Sequence[dict[str, Any]], who: str, from_back: bool):
    order = range(len(jobs) - 1, -1, -1) if from_back else range(len(jobs))
    for i in order:
        if _claim(folder, i, who):
            yield jobs[i]


def _read_results(path: Path) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed helper
        if isinstance(rec, dict) and isinstance(rec.get("index"), int):
            out[rec["index"]] = rec
    return out


def make_copies(
    jobs: Sequence[dict[str, Any]],
    folder: Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    processes: int = 2,
) -> list[dict[str, Any]]:
    """Make every copy ``{"pdf", "items" or "raw", "author", "target"}``; returns one result per job, in order:
    ``{"index", "size"}`` or ``{"index", "error"}``.

    ``processes`` 2 uses one helper process besides this one (1: this process only).
    """
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [dict(j, index=i) for i, j in enumerate(jobs)]
    total = len(jobs)
    results: dict[int, dict[str, Any]] = {}
    helper: subprocess.Popen[bytes] | None = None
    result_file = folder / "helper-results.jsonl"
    err_path = folder / "helper-stderr.txt"
    if processes >= 2 and total >= MIN_COPIES_FOR_HELPER and (os.cpu_count() or 1) >= 2:
        spec = folder / "jobs.pickle"  # pickle: ten times faster than JSON for a million floats
        spec.write_bytes(
            pickle.dumps({"folder": str(folder), "jobs": jobs}, protocol=pickle.HIGHEST_PROTOCOL)
        )
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(err_path, "wb") as err_file:
            helper = subprocess.Popen(
                [sys.executable, "-m", "meeting_server.archive.copies", str(spec), str(result_file)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                cwd=root,
            )
    try:
        for job in _take(folder, jobs, "main", from_back=False):
            results[job["index"]] = _make(job)
            if progress is not None:
                progress(len(results) + (len(_read_results(result_file)) if helper else 0), total)
        if helper is not None:
            try:
                helper.wait(timeout=HELPER_TIMEOUT)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
            if helper.returncode != 0:
                log.warning(
                    "annotated-copy helper exited with %s; its unfinished copies are made here: %s",
                    helper.returncode,
                    err_path.read_text("utf-8", "replace")[-2000:],
                )
            helper = None
            results.update({i: r for i, r in _read_results(result_file).items() if i not in results})
        for job in jobs:  # whatever a dead helper had claimed
            if job["index"] not in results:
                results[job["index"]] = _make(job)
        if progress is not None:
            progress(total, total)
    finally:
        if helper is not None and helper.poll() is None:
            helper.kill()
            helper.wait()
    return [results[i] for i in range(total)]


def _helper_main(spec_path: str, result_path: str) -> int:
    spec = pickle.loads(Path(spec_path).read_bytes())  # written by make_copies in this job's own folder
    folder, jobs = Path(spec["folder"]), spec["jobs"]
    t0 = time.perf_counter()
    with open(result_path, "a", encoding="utf-8") as out:
        for job in _take(folder, jobs, "helper", from_back=True):
            out.write(json.dumps(_make(job)) + "\n")
            out.flush()
    log.debug("helper made its copies in %.2f s", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(_helper_main(sys.argv[1], sys.argv[2]))
