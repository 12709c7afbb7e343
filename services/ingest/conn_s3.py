"""S3 sources: objects under a bucket prefix (optionally matching a glob), read as files.

Credentials come from the config or, when it has none, boto3's default chain (environment,
instance role). An endpoint override (S3-compatible stores) is checked like any outbound URL.
Each object is downloaded to a temporary file with a size limit and read by the file reader.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import pyarrow as pa
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.models import SourceOptions
from lockflow.ingest.configs import S3Config
from lockflow.ingest.connector import Connector, Probe
from lockflow.ingest.netguard import NetPolicy
from lockflow.ingest.read import read_chunks, unpack
from lockflow.ingest.settings import FileLimits


class S3Connector(Connector):
    """Lists the matching objects and reads them one after another."""

    kind = "s3"

    def __init__(self, config: S3Config, *, policy: NetPolicy, limits: FileLimits) -> None:
        self.config = config
        self.policy = policy
        self.limits = limits
        self._bytes = 0
        if config.endpoint_url:
            policy.check_url(config.endpoint_url)

    def label(self) -> str:
        """s3://bucket/prefix[glob]."""
        return f"s3://{self.config.bucket}/{self.config.prefix}{self.config.glob or ''}"

    def _client(self) -> Any:
        c = self.config
        kwargs: dict[str, Any] = {
            "region_name": c.region or "us-east-1",
            "config": BotoConfig(
                connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
            ),
        }
        if c.endpoint_url:
            kwargs["endpoint_url"] = c.endpoint_url
        if c.access_key_id:
            kwargs["aws_access_key_id"] = c.access_key_id
            kwargs["aws_secret_access_key"] = (
                c.secret_access_key.get_secret_value() if c.secret_access_key else None
            )
            if c.session_token:
                kwargs["aws_session_token"] = c.session_token.get_secret_value()
        return boto3.client("s3", **kwargs)

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
        except BotoCoreError as exc:
            raise InvalidInput(f"cannot reach S3 for {self.label()}: {exc}") from exc

    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """Download each object (size-limited) and read it; every object must have one format."""
        client = self._client()
        try:
            objects = self.objects(client)
        except ClientError as exc:
            raise StageError(
                f"S3 refused {self.label()}: {exc.response.get('Error', {}).get('Code', exc)}"
            ) from exc
        if not objects:
            raise InvalidInput(f"no objects match {self.label()}")
        for index, obj in enumerate(objects):
            target = workdir / f"{index:05d}-{PurePosixPath(obj['key']).name}"
            self._download(client, obj["key"], target)
            data, fmt = unpack(target, self.config.format, workdir, self.limits, entry=None)
            yield from read_chunks(data, fmt, options, self.limits)
            target.unlink(missing_ok=True)

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
        except InvalidInput:
            target.unlink(missing_ok=True)
            raise

    def bytes_read(self) -> int:
        """Object bytes downloaded."""
        return self._bytes
