"""The artifact store on an S3-compatible object store (distributed mode: no process shares a folder).

Keys are `<prefix>/<sha[:2]>/<sha><suffix>`, uris `s3://<bucket>/<key>`. Writes are streamed from the
process's own temp file (DatasetWriter and FileCopy hash while they write it): one PUT up to a part's
size, else a multipart upload holding one part in memory at a time. A key is never overwritten: it is
looked up first, and the write itself is conditional (If-None-Match: *), so a racing writer of the
same content leaves the first object as it was. Reads are ranged GETs through Arrow's S3 file system,
so a Parquet reader fetches the footer and only the row groups it reads, never the whole object.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.errors import LockflowError, NotFound

if TYPE_CHECKING:
    from pydantic import SecretStr

    from lockflow.common.settings import CommonSettings

MiB = 2**20
# The codes S3 (and S3-compatible servers) answer a conditional write with when the key exists.
EXISTS_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


class ArtifactStoreUnavailable(LockflowError):
    """The object store refused or did not answer (named with the bucket, never the credentials)."""


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


class S3ArtifactStore(ArtifactStore):
    """Artifacts as objects under `s3://bucket/prefix`, content-addressed and never overwritten."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_bytes: int = 16 * MiB,
        spool: Path | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_bytes = part_bytes
        self._spool = spool or Path(tempfile.gettempdir()) / "lockflow-spool"
        self._endpoint = endpoint
        # Path-style addressing: S3-compatible servers on an IP and port serve no bucket host names.
        # Checksums only where the API requires them: not every S3-compatible server reads the
        # aws-chunked trailers botocore sends by default.
        config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        parsed = urlparse(endpoint) if endpoint else None
        self._fs = pafs.S3FileSystem(
            access_key=access_key_id,
            secret_key=secret_access_key,
            region=region,
            endpoint_override=parsed.netloc if parsed else None,
            scheme=parsed.scheme if parsed else "https",
            connect_timeout=10,
            request_timeout=120,
            check_directory_existence_before_creation=False,
        )

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> S3ArtifactStore:
        """The store LOCKFLOW_ARTIFACT_URL (s3://bucket/prefix) and LOCKFLOW_ARTIFACT_S3_* name."""
        assert settings.artifact_url is not None
        parsed = urlparse(settings.artifact_url)
        return cls(
            bucket=parsed.netloc,
            prefix=parsed.path,
            endpoint=settings.artifact_s3_endpoint,
            region=settings.artifact_s3_region,
            access_key_id=_secret(settings.artifact_s3_access_key_id),
            secret_access_key=_secret(settings.artifact_s3_secret_access_key),
            part_bytes=settings.artifact_s3_part_mb * MiB,
            spool=settings.artifact_spool_dir,
        )

    def __repr__(self) -> str:
        return f"S3ArtifactStore(s3://{self.bucket}/{self.prefix}, endpoint={self._endpoint})"

    # ------------------------------------------------------------------ addresses

    def _key(self, digest: str, suffix: str) -> str:
        name = f"{digest[:2]}/{digest}{suffix}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def uri_for(self, digest: str, *, suffix: str) -> str:
        """The object uri `s3://bucket/<prefix>/<sha[:2]>/<sha><suffix>`."""
        return self._uri(self._key(digest, suffix))

    def key_of(self, uri: str) -> str:
        """The object key of an artifact uri, refusing anything outside this bucket and prefix."""
        parsed = urlparse(uri)
        key = parsed.path.lstrip("/")
        inside = not self.prefix or key.startswith(self.prefix + "/")
        if parsed.scheme != "s3" or parsed.netloc != self.bucket or not inside or ".." in key.split("/"):
            raise NotFound(f"artifact {uri} is not in this store")
        return key

    # ------------------------------------------------------------------ writes

    def put_bytes(self, data: bytes, *, suffix: str) -> tuple[str, str]:
        """Store bytes under their SHA-256 (one conditional PUT); return (uri, fingerprint)."""
        digest = hashlib.sha256(data).hexdigest()
        key = self._key(digest, suffix)
        if not self._head(key):
            self._put(key, io.BytesIO(data))
        return self._uri(key), digest

    def spool_dir(self) -> Path:
        """This process's own temp folder (never shared: the upload is what other processes see)."""
        return self._spool

    def commit_file(self, tmp: Path, digest: str, *, suffix: str) -> str:
        """Upload a finished temp file under its content address unless that exists; remove the file."""
        key = self._key(digest, suffix)
        try:
            if not self._head(key):
                if tmp.stat().st_size <= self.part_bytes:
                    with tmp.open("rb") as body:
                        self._put(key, body)
                else:
                    self._multipart(key, tmp)
        finally:
            tmp.unlink(missing_ok=True)
        return self._uri(key)

    def _put(self, key: str, body: Any) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) not in EXISTS_CODES:  # else a racing writer stored the same bytes first
                raise self._unavailable("storing", key, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("storing", key, exc) from exc

    def _multipart(self, key: str, path: Path) -> None:
        """Upload in parts of `part_bytes`, one part in memory at a time; abort on any failure."""
        try:
            upload = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("storing", key, exc) from exc
        upload_id = upload["UploadId"]
        try:
            parts = []
            with path.open("rb") as source:
                number = 1
                while chunk := source.read(self.part_bytes):
                    answer = self._client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                    number += 1
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            self._abort(key, upload_id)
            if _code(exc) not in EXISTS_CODES:
                raise self._unavailable("storing", key, exc) from exc
        except BaseException as exc:
            self._abort(key, upload_id)
            if isinstance(exc, BotoCoreError):
                raise self._unavailable("storing", key, exc) from exc
            raise

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            pass  # an unfinished upload holds no key; the bucket's lifecycle rule may expire it

    # ------------------------------------------------------------------ reads

    def _head(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in MISSING_CODES:
                return False
            raise self._unavailable("looking up", key, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("looking up", key, exc) from exc
        return True

    def exists(self, uri: str) -> bool:
        """Whether the object is stored (False for a uri outside this bucket and prefix)."""
        try:
            key = self.key_of(uri)
        except NotFound:
            return False
        return self._head(key)

    def open_input(self, uri: str) -> pa.NativeFile:
        """The object as a seekable file: each read is a ranged GET (Parquet reads its footer first)."""
        key = self.key_of(uri)
        try:
            return self._fs.open_input_file(f"{self.bucket}/{key}")
        except FileNotFoundError as exc:
            raise NotFound(f"artifact {uri} is missing") from exc
        except OSError as exc:
            raise self._unavailable("reading", key, exc) from exc

    def read_bytes(self, uri: str) -> bytes:
        """The object's bytes in one GET (for small artifacts: reports)."""
        key = self.key_of(uri)
        try:
            return bytes(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if _code(exc) in MISSING_CODES:
                raise NotFound(f"artifact {uri} is missing") from exc
            raise self._unavailable("reading", key, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("reading", key, exc) from exc

    def remove(self, uri: str) -> None:
        """Delete the object (a no-op when it is not stored; refuses a uri outside this store)."""
        key = self.key_of(uri)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) not in MISSING_CODES:
                raise self._unavailable("removing", key, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("removing", key, exc) from exc

    def location(self, uri: str) -> str:
        """The object's uri (there is no local path)."""
        self.key_of(uri)
        return uri

    def _unavailable(self, doing: str, key: str, exc: BaseException) -> ArtifactStoreUnavailable:
        reason = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        where = self._endpoint or "AWS"
        return ArtifactStoreUnavailable(
            f"artifact store at {where} failed {doing} s3://{self.bucket}/{key}: {reason}: {exc}"
        )


def _code(exc: BaseException) -> str:
    if not isinstance(exc, ClientError):
        return ""
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
