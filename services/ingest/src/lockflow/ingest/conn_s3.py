"""S3 sources: objects under a bucket prefix (optionally matching a glob), read as files.

Credentials come from the config or, when it has none, boto3's default chain (environment,
instance role). An endpoint override (S3-compatible stores) is checked by the network guard when the
source is stored, and each request to it (signed by botocore as usual) is sent by the guard itself
from botocore's `before-send` hook: its host (for virtual-hosted buckets `bucket.endpoint`) checked
and the checked address connected to, the Host header and TLS name kept (`netguard.pinned_send`).
A connection that fails below HTTP gives the guard's one uniform message. Each object is downloaded
to a temporary file with a size limit and read by the file reader.
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pyarrow as pa
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.models import SourceOptions
from lockflow.ingest.connector import Connector, Probe
from lockflow.ingest.read import read_chunks, unpack
from lockflow.sources.checks import s3_label
from lockflow.sources.configs import S3Config
from lockflow.sources.netguard import NetPolicy, Unreachable, pinned_send, unreachable
from lockflow.sources.settings import FileLimits


class S3Connector(Connector):
    """Lists the matching objects and reads them one after another."""

    kind = "s3"

    def __init__(self, config: S3Config, *, policy: NetPolicy, limits: FileLimits) -> None:
        self.config = config
        self.policy = policy
        self.limits = limits
        self._bytes = 0
        self._http: httpx.Client | None = None

    def check_network(self) -> str | None:
        """The endpoint override's host checked by the network policy now (None for AWS itself)."""
        if not self.config.endpoint_url:
            return None
        return self.policy.check_url(self.config.endpoint_url)[1]

    def _send(self, request: Any, **_kwargs: Any) -> AWSResponse | None:
        """botocore's before-send hook: send the signed request to the checked address of its host."""
        if not self.config.endpoint_url:
            return None  # AWS itself: botocore sends it
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), trust_env=False)
        headers = {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        body = request.body
        content = body.read() if hasattr(body, "read") else body.encode() if isinstance(body, str) else body
        try:
            response = pinned_send(
                self._http,
                self.policy,
                request.method,
                request.url,
                headers=headers,
                content=content,
                kind="s3",
            )
        except Unreachable as exc:  # as botocore's own network errors, so its retries apply
            raise EndpointConnectionError(endpoint_url=request.url, error=exc) from exc
        answer = AWSResponse(
            request.url, response.status_code, dict(response.headers.items()), _Body(response)
        )
        if not request.stream_output:
            answer.content  # noqa: B018 (read now: it releases the connection)
        return answer

    def _unreachable(self, client: Any, exc: BotoCoreError) -> Unreachable:
        parts = urlsplit(str(client.meta.endpoint_url))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return unreachable(parts.hostname or "", port, exc, kind="s3")

    def label(self) -> str:
        """s3://bucket/prefix[glob]."""
        return s3_label(self.config)

    def _client(self) -> Any:
        c = self.config
        kwargs: dict[str, Any] = {
            "region_name": c.region or "us-east-1",
            "config": BotoConfig(
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": c.addressing_style},
            ),
        }
        if c.endpoint_url:
            self.check_network()  # DNS may have changed since the source was stored
            kwargs["endpoint_url"] = c.endpoint_url
        if c.access_key_id:
            kwargs["aws_access_key_id"] = c.access_key_id
            kwargs["aws_secret_access_key"] = (
                c.secret_access_key.get_secret_value() if c.secret_access_key else None
            )
            if c.session_token:
                kwargs["aws_session_token"] = c.session_token.get_secret_value()
        client = boto3.client("s3", **kwargs)
        client.meta.events.register("before-send.s3", self._send)
        return client

    def objects(self, client: Any) -> list[dict[str, Any]]:
        """The matching objects (key, size), refusing more than max_objects or more bytes than allowed."""
        found: list[dict[str, Any]] = []
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.config.bucket, Prefix=self.config.prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue
                relative = key[len(self.config.prefix) :]
                if self.config.glob and not (
                    fnmatch.fnmatchcase(relative, self.config.glob)
                    or fnmatch.fnmatchcase(key, self.config.glob)
                ):
                    continue
                found.append({"key": key, "size": int(item["Size"])})
                if len(found) > self.config.max_objects:
                    raise InvalidInput(f"{self.label()} matches more than {self.config.max_objects} objects")
        total = sum(o["size"] for o in found)
        if total > self.limits.max_file_bytes:
            raise InvalidInput(
                f"{self.label()} holds {total} bytes, more than the limit of {self.limits.max_file_bytes}"
            )
        return sorted(found, key=lambda o: o["key"])

    def probe(self, found: Probe) -> None:
        """List the bucket (reachable, authorised) and read the first bytes of the first object (readable)."""
        client = self._client()
        try:
            client.head_bucket(Bucket=self.config.bucket)
            found.reachable = found.authorised = True
            objects = self.objects(client)
            if not objects:
                raise InvalidInput(f"no objects match {self.label()}")
            client.get_object(Bucket=self.config.bucket, Key=objects[0]["key"], Range="bytes=0-1023")[
                "Body"
            ].read()
            found.readable = True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                found.reachable = True
            raise InvalidInput(f"S3 refused {self.label()}: {code or exc}") from exc
        except (HTTPClientError, BotoConnectionError) as exc:  # refused, reset, timed out: one message
            raise self._unreachable(client, exc) from exc
        except BotoCoreError as exc:
            raise InvalidInput(f"cannot use S3 for {self.label()}: {exc}") from exc
        finally:
            self._close()

    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """Download each object (size-limited) and read it; every object must have one format."""
        client = self._client()
        try:
            try:
                objects = self.objects(client)
            except ClientError as exc:
                raise StageError(
                    f"S3 refused {self.label()}: {exc.response.get('Error', {}).get('Code', exc)}"
                ) from exc
            except (HTTPClientError, BotoConnectionError) as exc:
                raise self._unreachable(client, exc) from exc
            if not objects:
                raise InvalidInput(f"no objects match {self.label()}")
            for index, obj in enumerate(objects):
                target = workdir / f"{index:05d}-{PurePosixPath(obj['key']).name}"
                self._download(client, obj["key"], target)
                data, fmt = unpack(target, self.config.format, workdir, self.limits, entry=None)
                yield from read_chunks(data, fmt, options, self.limits)
                target.unlink(missing_ok=True)
        finally:
            self._close()

    def _close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _download(self, client: Any, key: str, target: Path) -> None:
        try:
            body = client.get_object(Bucket=self.config.bucket, Key=key)["Body"]
            with target.open("wb") as out:
                for block in body.iter_chunks(1024 * 1024):
                    self._bytes += len(block)
                    if self._bytes > self.limits.max_file_bytes:
                        raise InvalidInput(
                            f"{self.label()} is larger than {self.limits.max_file_bytes} bytes"
                        )
                    out.write(block)
        except ClientError as exc:
            target.unlink(missing_ok=True)
            raise StageError(f"S3 refused s3://{self.config.bucket}/{key}: {exc}") from exc
        except (HTTPClientError, BotoConnectionError) as exc:
            target.unlink(missing_ok=True)
            raise self._unreachable(client, exc) from exc
        except InvalidInput:
            target.unlink(missing_ok=True)
            raise

    def bytes_read(self) -> int:
        """Object bytes downloaded."""
        return self._bytes


class _Body(io.RawIOBase):
    """An httpx response body as the raw stream botocore reads (read, stream, close)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks = response.iter_raw()  # as sent: botocore decodes nothing either
        self._pending = b""

    def readable(self) -> bool:
        """Always: it is a response body."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill buffer from the body; 0 at its end."""
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                self._response.close()
                return 0
            except httpx.RequestError as exc:  # the body broke off: botocore's streaming error
                self._response.close()
                raise ResponseStreamingError(error=exc) from exc
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def read(self, size: int | None = -1) -> bytes:
        """Up to size bytes; all that is left for None or -1 (botocore passes None)."""
        if size is None or size < 0:
            return self.readall()
        return super().read(size) or b""

    def stream(self, amt: int = 1024 * 1024) -> Iterator[bytes]:
        """The body in blocks (what AWSResponse.content joins)."""
        while block := self.read(amt):
            yield block

    def close(self) -> None:
        """Release the connection."""
        self._response.close()
        super().close()
