"""Gate 2's previews kept while the gate is open: the data read once, answers served again.

One `PreviewStore` per process holds, in one least-recently-used cache bounded by bytes
(LOCKFLOW_PREVIEW_CACHE_BYTES):
- per dataset artifact (its content-addressed uri, so one gate's data): the uniform sample a
  first answer is computed on, read once (warmed when the assessment that opens gate 2 is made);
- per (dataset, findings, choices): the answer, so choices previewed before are answered at once.

A first answer from a sample says `exact: false` and `exact_pending: true`: the exact figures are
computed in the background (one at a time) and served on the next request with the same choices
(the UI polls while `exact_pending`). Up to LOCKFLOW_PREVIEW_EXACT_ROWS rows the exact answer is the
preview of every row in memory; above it the counts over every row are streamed batch by batch
(lockflow.quality.stream) and the column statistics, histograms and example rows stay the sample's.
"""

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import structlog

from lockflow.common.models import Finding, ResolutionChoice
from lockflow.quality.preview import (
    describe_steps,
    preview,
    prime,
    read_sample,
    read_whole,
    whole_data_counts,
)

log = structlog.get_logger(__name__)

Opener = Callable[[], AbstractContextManager[Path | pa.NativeFile]]
MAX_JOBS = 64  # finished exact answers waiting to be fetched when the cache cannot hold them


class ByteLRU:
    """A thread-safe mapping bounded by the bytes its values take; least recently used out first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The value (now the most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any, size: int) -> bool:
        """Keep `value` (evicting the least recently used); False if it alone exceeds the bound."""
        with self._lock:
            self._drop(key)
            if size > self.max_bytes:
                return False
            while self._items and self.used + size > self.max_bytes:
                self._drop(next(iter(self._items)))
            self._items[key] = (value, size)
            self.used += size
            return True

    def discard(self, match: Callable[[Hashable], bool]) -> int:
        """Remove every key `match` accepts; how many were removed."""
        with self._lock:
            keys = [k for k in self._items if match(k)]
            for key in keys:
                self._drop(key)
            return len(keys)

    def __len__(self) -> int:
        return len(self._items)

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.used -= item[1]


@dataclass(frozen=True)
class Sample:
    """A dataset's preview sample (or every row) and its total row count."""

    frame: pd.DataFrame
    total: int
    memo: dict[str, Any] = field(default_factory=dict)  # preview's per-frame memo (see preview.preview)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def frame_bytes(frame: pd.DataFrame) -> int:
    """What a frame takes in memory (strings counted)."""
    return int(frame.memory_usage(deep=True, index=True).sum())


def answer_bytes(answer: dict[str, Any]) -> int:
    """What an answer takes, by its JSON size."""
    return len(json.dumps(answer, default=str))


def choices_key(findings: list[Finding], choices: list[ResolutionChoice]) -> str:
    """A digest of the findings and the choices (in the order given: the result does not depend on it)."""
    text = json.dumps(
        {
            "findings": [f.model_dump(mode="json") for f in findings],
            "choices": sorted((c.model_dump(mode="json") for c in choices), key=lambda c: c["finding_id"]),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class PreviewStore:
    """The process's preview data and answers, and the background worker for exact answers."""

    def __init__(self, *, max_bytes: int, sample_rows: int, exact_rows: int) -> None:
        self.cache = ByteLRU(max_bytes)
        self.sample_rows = sample_rows
        self.exact_rows = exact_rows
        self._jobs: OrderedDict[tuple[str, str], Future[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview-exact")
        # Requests computing a first answer now: the background's batches wait for none (see _yield).
        self._answering = 0
        self._idle = threading.Condition()

    def sample(self, uri: str, open_input: Opener) -> Sample:
        """The dataset's sample, read once (concurrent callers wait for the one read)."""
        found = self.cache.get(("sample", uri))
        if found is not None:
            return found
        with self._lock:
            loading = self._loading.setdefault(uri, threading.Lock())
        with loading:
            found = self.cache.get(("sample", uri))
            if found is None:
                with open_input() as source:
                    frame, total = read_sample(path=source, rows=self.sample_rows)
                found = Sample(frame, total)
                self.cache.put(("sample", uri), found, frame_bytes(frame))
        return found

    def prepare(self, uri: str, open_input: Opener, findings: list[Finding]) -> Sample:
        """The dataset's sample, with what every preview of these findings needs from it computed."""
        data = self.sample(uri, open_input)
        with data.lock:
            prime(data.frame, findings, data.memo)
        return data

    def warm(self, uri: str, open_input: Opener, findings: list[Finding]) -> None:
        """Prepare the dataset's sample in the background (gate 2 is about to open on it)."""
        self._worker.submit(self._quietly, self.prepare, uri, open_input, findings)

    def forget(self, uri: str) -> int:
        """Drop what is kept for a dataset (its gate was decided); how many entries went."""
        return self.cache.discard(lambda k: isinstance(k, tuple) and len(k) > 1 and k[1] == uri)

    def answer(
        self, *, uri: str, open_input: Opener, findings: list[Finding], choices: list[ResolutionChoice]
    ) -> dict[str, Any]:
        """The preview of `choices`: exact, or a first estimate while the exact one is computed."""
        key = (uri, choices_key(findings, choices))
        exact = self._finished(key)
        if exact is not None:
            return exact
        known = self.cache.get(("answer", *key))
        if known is not None and (known["exact"] or "exact_error" in known):
            return {**known, "exact_pending": False}
        if known is None:
            with self._answering_now():
                data = self.sample(uri, open_input)
                with data.lock:
                    known = preview(
                        frame=data.frame,
                        total_rows=data.total,
                        findings=findings,
                        choices=choices,
                        memo=data.memo,
                    )
            known["exact_pending"] = False
            self.cache.put(("answer", *key), known, answer_bytes(known))
            if known["exact"]:
                return known
        self._submit(key, lambda: self._exact(known, open_input, findings, choices))
        return {**known, "exact_pending": self._pending(key)}

    @contextmanager
    def _answering_now(self) -> Iterator[None]:
        with self._idle:
            self._answering += 1
        try:
            yield
        finally:
            with self._idle:
                self._answering -= 1
                self._idle.notify_all()

    def _yield(self) -> None:
        """Before each batch of a background exact answer: wait while a request computes a first
        answer (up to 5 s), so the person's click is not slowed by the figures that come after."""
        with self._idle:
            self._idle.wait_for(lambda: self._answering == 0, timeout=5)

    def _submit(self, key: tuple[str, str], work: Callable[[], dict[str, Any]]) -> None:
        """Compute the exact answer for `key` in the background, unless it is under way. The exact
        answers still queued for other choices on the same dataset are dropped: the person moved on
        (asking for them again queues them again)."""
        with self._lock:
            if key in self._jobs and not self._jobs[key].cancelled():
                return
            for other, job in list(self._jobs.items()):
                if other[0] == key[0] and other != key and job.cancel():
                    del self._jobs[other]
            self._jobs[key] = self._worker.submit(work)
            while len(self._jobs) > MAX_JOBS:
                self._jobs.popitem(last=False)

    def wait(self, *, uri: str, findings: list[Finding], choices: list[ResolutionChoice]) -> None:
        """Block until the exact answer for these choices is computed (tests and benches)."""
        with self._lock:
            job = self._jobs.get((uri, choices_key(findings, choices)))
        if job is not None and not job.cancelled():
            job.exception()

    def close(self) -> None:
        """Drop the exact answers still queued (the one under way finishes)."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _pending(self, key: tuple[str, str]) -> bool:
        with self._lock:
            job = self._jobs.get(key)
        return job is not None and not job.done()

    def _finished(self, key: tuple[str, str]) -> dict[str, Any] | None:
        """The exact answer once computed (kept in the cache; handed over once if it does not fit)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or not job.done() or job.cancelled():
                return None
            del self._jobs[key]
        try:
            exact = job.result()
        except Exception as exc:
            log.warning("preview_exact_failed", error=repr(exc))
            known = self.cache.get(("answer", *key))
            if known is None:
                return None
            failed = {**known, "exact_pending": False, "exact_error": str(exc)}  # not asked again
            self.cache.put(("answer", *key), failed, answer_bytes(failed))
            return failed
        exact = {**exact, "exact_pending": False}
        self.cache.put(("answer", *key), exact, answer_bytes(exact))
        return exact

    def _exact(
        self,
        first: dict[str, Any],
        open_input: Opener,
        findings: list[Finding],
        choices: list[ResolutionChoice],
    ) -> dict[str, Any]:
        """The exact answer: every row in memory when small enough, else streamed counts."""
        total = int(first["rows_total"])
        if total <= self.exact_rows:
            with open_input() as source:
                frame, total = read_whole(path=source)
            return preview(frame=frame, total_rows=total, findings=findings, choices=choices)
        from lockflow.quality.stream import preview_counts

        with open_input() as source:
            counts = preview_counts(path=source, findings=findings, choices=choices, pause=self._yield)
        return {
            **first,
            **whole_data_counts(counts.as_dict(), n=total, total=total),
            "exact": True,
            "sampled": False,
            "steps": describe_steps(counts.applied, findings),
            "method": (
                f"every row of the dataset counted (streamed batch by batch); the column statistics, "
                f"histograms and example rows are from a uniform random sample of "
                f"{first['sample_rows']} rows (seed 0)"
            ),
        }

    @staticmethod
    def _quietly(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.warning("preview_warm_failed", error=repr(exc))
