"""HTTP API sources: JSON records with auth, pagination, rate-limit awareness, retries and a circuit breaker.

Every request goes through `netguard.safe_request` (addresses and redirects checked, the checked
address connected to, a failed connection reported as one uniform message). A 429 or 503
waits for Retry-After (capped); other 5xx and network errors retry with exponential backoff; after
5 consecutive failures a host's circuit opens and requests fail at once until the cool-down
(30 s) passes, so a broken API is not hammered by every run. Retries and circuits are
lockflow.resilience's (tenacity and purgatory underneath).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow as pa

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.logging import get_logger
from lockflow.common.models import SourceOptions
from lockflow.ingest.connector import Connector, Probe
from lockflow.ingest.read import records_of, records_to_tables
from lockflow.resilience import CircuitBreakers, CircuitOpen, retrying
from lockflow.sources.checks import api_label
from lockflow.sources.configs import ApiConfig
from lockflow.sources.netguard import NetPolicy, Unreachable, safe_request

log = get_logger(__name__)
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class ApiUnavailable(StageError):
    """The API kept failing, or its circuit is open."""


class _Transient(Exception):
    """One attempt failed in a way worth retrying (network error, 429, 5xx); counted by the breaker."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# One circuit per host for the whole process, so every run sees a broken API as broken.
BREAKERS = CircuitBreakers(threshold=5, cooldown=30.0)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path, or None."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


class HttpApiConnector(Connector):
    """Pages through a JSON API, one chunk per page."""

    kind = "api"

    def __init__(
        self,
        config: ApiConfig,
        *,
        policy: NetPolicy,
        breaker: CircuitBreakers = BREAKERS,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.policy = policy
        self.breaker = breaker
        self.sleep = sleep
        self.transport = transport
        self._bytes = 0
        self.requests = 0

    def label(self) -> str:
        """The URL without its query (which may hold a key)."""
        return api_label(self.config)

    def check_network(self) -> str:
        """The API's host checked by the network policy now; the address it would connect to."""
        return self.policy.check_url(self.config.url)[1]

    def _client(self) -> httpx.Client:
        timeout = httpx.Timeout(self.config.timeout_seconds, connect=min(10.0, self.config.timeout_seconds))
        return httpx.Client(timeout=timeout, transport=self.transport, trust_env=False)

    def _auth(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """The plain headers, the credential headers (for the API's own origin only) and query params."""
        auth = self.config.auth
        headers = {"Accept": "application/json", **self.config.headers}
        credentials: dict[str, str] = {}
        params: dict[str, str] = {}
        if auth.type == "bearer":
            credentials["Authorization"] = f"Bearer {_secret(auth.token, 'auth.token')}"
        elif auth.type == "api_key":
            key = _secret(auth.token, "auth.token")
            if auth.query_param:
                params[auth.query_param] = key
            else:
                credentials[auth.header] = key
        elif auth.type == "basic":
            raw = f"{auth.username or ''}:{_secret(auth.password, 'auth.password')}".encode()
            credentials["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return headers, credentials, params

    def get(self, client: httpx.Client, url: str, params: dict[str, str]) -> httpx.Response:
        """One GET with retries, Retry-After and the circuit breaker; a 4xx other than 429 is final."""
        host = urlsplit(url).hostname or ""
        attempts = self.config.max_retries + 1
        try:
            response = retrying(
                attempts=attempts, backoff=self.config.backoff_seconds, retry_on=_Transient, sleep=self.sleep
            )(self._attempt, client, host, url, params)
        except CircuitOpen as exc:
            raise ApiUnavailable(str(exc)) from exc
        except _Transient as exc:
            raise ApiUnavailable(f"{host} kept failing after {attempts} attempts (last: {exc})") from exc
        if response.status_code in (401, 403):
            raise InvalidInput(f"{host} refused the credentials (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise InvalidInput(f"{host} answered HTTP {response.status_code} for {self.label()}")
        self._bytes += len(response.content)
        return response

    def _attempt(self, client: httpx.Client, host: str, url: str, params: dict[str, str]) -> httpx.Response:
        """One request through the host's circuit; a network error, 429 or 5xx counts as its failure."""
        headers, credentials, auth_params = self._auth()
        with self.breaker.guard(host):
            self.requests += 1
            try:
                response = safe_request(
                    client,
                    self.policy,
                    "GET",
                    url,
                    headers=headers,
                    credentials=credentials,
                    params={**params, **auth_params},
                )
            except Unreachable as exc:  # refused, reset, timed out: one message whatever the cause
                raise _Transient(str(exc)) from exc
            if response.status_code in _RETRY_STATUSES:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if wait is not None and wait > self.config.max_retry_after_seconds:
                    raise ApiUnavailable(
                        f"{host} asked to wait {wait:.0f} s (Retry-After), more than the allowed "
                        f"{self.config.max_retry_after_seconds:.0f} s"
                    )
                raise _Transient(f"HTTP {response.status_code}", retry_after=wait)
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise InvalidInput(f"{response.url.host} did not answer JSON: {exc}") from exc

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """The records of each page, following the configured pagination style."""
        p = self.config.pagination
        url: str | None = self.config.url
        params = dict(self.config.params)
        page, offset, cursor = p.start_page, 0, None
        with self._client() as client:
            for _ in range(self.config.max_pages):
                if url is None:
                    return
                query = dict(params)
                if p.style == "page":
                    query[p.page_param] = str(page)
                    if p.size_param:
                        query[p.size_param] = str(p.page_size)
                elif p.style == "offset":
                    query[p.offset_param], query[p.limit_param] = str(offset), str(p.page_size)
                elif p.style == "cursor" and cursor is not None:
                    query[p.cursor_param] = cursor
                response = self.get(client, url, query)
                document = self._json(response)
                records = records_of(document, self.config.records_path, source=self.label())
                yield records
                if p.style == "none" or not records:
                    return
                if p.style == "page":
                    page += 1
                    if len(records) < p.page_size:
                        return
                elif p.style == "offset":
                    offset += len(records)
                    if len(records) < p.page_size:
                        return
                elif p.style == "cursor":
                    next_cursor = dig(document, p.cursor_path)
                    if next_cursor in (None, ""):
                        return
                    cursor = str(next_cursor)
                elif p.style == "link":
                    match = _LINK_NEXT.search(response.headers.get("link", ""))
                    url, params = (match.group(1), {}) if match else (None, params)
            log.warning("api_max_pages_reached", source=self.label(), max_pages=self.config.max_pages)

    def probe(self, found: Probe) -> None:
        """Fetch the first page: reachable, authorised (no 401/403), and records at the path."""
        first_status: list[int] = []
        with self._client() as client:
            host = urlsplit(self.config.url).hostname or ""
            headers, credentials, auth_params = self._auth()
            response = safe_request(
                client,
                self.policy,
                "GET",
                self.config.url,
                headers=headers,
                credentials=credentials,
                params={**self.config.params, **auth_params},
            )
            first_status.append(response.status_code)
            found.reachable = True
            if response.status_code in (401, 403):
                raise InvalidInput(f"{host} refused the credentials (HTTP {response.status_code})")
            found.authorised = True
            if response.status_code >= 400:
                raise InvalidInput(f"{host} answered HTTP {response.status_code}")
            records_of(self._json(response), self.config.records_path, source=self.label())
            found.readable = True

    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """One or more Arrow tables per page."""
        for records in self.pages():
            if records:
                yield from records_to_tables(records, options.chunk_rows)

    def bytes_read(self) -> int:
        """Response bytes received."""
        return self._bytes


def _secret(value: Any, name: str) -> str:
    if value is None:
        raise InvalidInput(f"the API config needs {name} for this auth type")
    return str(value.get_secret_value())
