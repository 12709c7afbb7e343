"""The S3 connector over real HTTP against the real S3-compatible server (SeaweedFS, scripts/services.sh)."""

import gzip
import io
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lockflow.common.errors import InvalidInput
from lockflow.common.models import SourceOptions
from lockflow.ingest.conn_s3 import S3Connector
from lockflow.ingest.read import load_chunks
from lockflow.sources.configs import parse_config
from lockflow.sources.netguard import ForbiddenDestination, NetPolicy
from lockflow.sources.settings import FileLimits

# The server's one identity (services.sh env); the s3_server fixture fails loudly when it is unset.
KEYS = {
    "access_key_id": os.environ.get("LOCKFLOW_TEST_S3_ACCESS_KEY_ID", ""),
    "secret_access_key": os.environ.get("LOCKFLOW_TEST_S3_SECRET_ACCESS_KEY", ""),
}
BUCKET = f"lake-{uuid.uuid4().hex[:10]}"  # the server outlives the test: a bucket of its own


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def bucket(s3_server: Any) -> Iterator[tuple[str, pd.DataFrame]]:
    client = s3_server.client()
    s3_server.bucket(BUCKET)
    frame = pd.DataFrame({"id": range(900), "amount": [i * 0.5 for i in range(900)]})
    for part in range(3):
        body = frame.iloc[part * 300 : (part + 1) * 300].to_csv(index=False).encode()
        client.put_object(Bucket=BUCKET, Key=f"sales/2026/part-{part}.csv", Body=body)
    client.put_object(Bucket=BUCKET, Key="sales/2026/README.txt", Body=b"not data")
    client.put_object(
        Bucket=BUCKET, Key="gz/data.csv.gz", Body=gzip.compress(frame.to_csv(index=False).encode())
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    client.put_object(Bucket=BUCKET, Key="pq/data.parquet", Body=buffer.getvalue())
    yield s3_server.endpoint, frame
    s3_server.remove(BUCKET, "")
    client.delete_bucket(Bucket=BUCKET)


ALLOW = NetPolicy.from_list(["127.0.0.1/32"])


def connector(endpoint: str, **config: object) -> S3Connector:
    parsed = parse_config("s3", {"bucket": BUCKET, "endpoint_url": endpoint, **KEYS, **config})
    return S3Connector(parsed, policy=ALLOW, limits=FileLimits())  # type: ignore[arg-type]


def read(conn: S3Connector, tmp_path: Path) -> pd.DataFrame:
    chunks = conn.chunks(options=SourceOptions(), workdir=tmp_path)
    return load_chunks(chunks, name=conn.label(), column_types={}, bytes_read=0).table.to_pandas()


def test_a_prefix_and_glob_read_every_matching_object(
    bucket: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    endpoint, frame = bucket
    conn = connector(endpoint, prefix="sales/2026/", glob="*.csv")
    got = read(conn, tmp_path)
    assert len(got) == len(frame) and got["amount"].sum() == pytest.approx(frame["amount"].sum())
    assert conn.bytes_read() > 0
    health = conn.health()
    assert health.ok and health.seconds > 0
    assert list(tmp_path.iterdir()) == []  # downloads are removed after reading


def test_gzip_and_parquet_objects(bucket: tuple[str, pd.DataFrame], tmp_path: Path) -> None:
    endpoint, frame = bucket
    assert read(connector(endpoint, prefix="gz/"), tmp_path)["id"].tolist() == frame["id"].tolist()
    assert read(connector(endpoint, prefix="pq/"), tmp_path)["amount"].sum() == pytest.approx(
        frame["amount"].sum()
    )


def test_wrong_credentials_and_missing_objects_fail_the_health_check(
    bucket: tuple[str, pd.DataFrame],
) -> None:
    endpoint, _ = bucket
    missing = connector(endpoint, prefix="nothing-here/").health()
    assert not missing.ok and missing.authorised and "no objects match" in missing.message
    other = S3Connector(
        parse_config("s3", {"bucket": "no-such-bucket", "endpoint_url": endpoint, **KEYS}),  # type: ignore[arg-type]
        policy=ALLOW,
        limits=FileLimits(),
    ).health()
    assert not other.ok and "S3 refused" in other.message


def test_an_internal_endpoint_needs_the_allowlist(bucket: tuple[str, pd.DataFrame]) -> None:
    endpoint, _ = bucket
    with pytest.raises(ForbiddenDestination, match="loopback"):
        S3Connector(
            parse_config("s3", {"bucket": BUCKET, "endpoint_url": endpoint}),  # type: ignore[arg-type]
            policy=NetPolicy.from_list([]),
            limits=FileLimits(),
        ).check_network()


def test_a_size_limit_stops_the_download(bucket: tuple[str, pd.DataFrame], tmp_path: Path) -> None:
    endpoint, _ = bucket
    small = S3Connector(
        parse_config("s3", {"bucket": BUCKET, "endpoint_url": endpoint, "prefix": "pq/", **KEYS}),  # type: ignore[arg-type]
        policy=ALLOW,
        limits=FileLimits(max_file_bytes=100),
    )
    with pytest.raises(InvalidInput, match="more than the limit of 100"):
        read(small, tmp_path)


def only_here(names: dict[str, str]):  # a resolver that knows names the system resolver does not
    return lambda host, _port: [names[host]] if host in names else []


def test_requests_go_to_the_checked_address_not_a_new_lookup(
    bucket: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    endpoint, frame = bucket
    port = endpoint.rsplit(":", 1)[1]
    # The name exists only in this resolver: had botocore looked it up itself, nothing would answer.
    names = {"object-store.test": "127.0.0.1"}
    policy = NetPolicy.from_list(list(names), resolver=only_here(names))
    parsed = parse_config(
        "s3",
        {
            "bucket": BUCKET,
            "endpoint_url": f"http://object-store.test:{port}",
            "prefix": "pq/",
            "addressing_style": "path",
            **KEYS,
        },
    )
    conn = S3Connector(parsed, policy=policy, limits=FileLimits())  # type: ignore[arg-type]
    assert conn.health().ok
    assert read(conn, tmp_path)["id"].tolist() == frame["id"].tolist()


def test_a_name_rebound_to_an_internal_address_is_refused_at_the_next_request(
    bucket: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    endpoint, _ = bucket
    port = endpoint.rsplit(":", 1)[1]
    names = {"store.example.com": "93.184.216.34", f"{BUCKET}.store.example.com": "93.184.216.34"}
    policy = NetPolicy.from_list([], resolver=only_here(names))
    parsed = parse_config(
        "s3", {"bucket": BUCKET, "endpoint_url": f"http://store.example.com:{port}", "prefix": "pq/", **KEYS}
    )
    conn = S3Connector(parsed, policy=policy, limits=FileLimits())  # type: ignore[arg-type]
    assert conn.check_network() == "93.184.216.34"  # public when stored
    names.update({"store.example.com": "127.0.0.1", f"{BUCKET}.store.example.com": "127.0.0.1"})  # rebinding
    health = conn.health()
    assert not health.ok and "loopback" in health.message
    with pytest.raises(ForbiddenDestination, match="loopback"):
        read(conn, tmp_path)


def test_an_open_port_and_a_closed_one_give_the_same_message() -> None:
    banner = socket.create_server(("127.0.0.1", 0))  # something that is no S3 on an open port
    stop = False

    def answer() -> None:
        banner.settimeout(0.2)
        while not stop:
            try:
                conn, _ = banner.accept()
            except TimeoutError:
                continue
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    open_port, closed_port = banner.getsockname()[1], _free_port()
    try:
        messages = [
            connector(f"http://127.0.0.1:{port}").health().message.replace(str(port), "PORT")
            for port in (open_port, closed_port)
        ]
    finally:
        stop = True
        thread.join()
        banner.close()
    assert messages == ["could not connect to 127.0.0.1:PORT (connection failed or timed out)"] * 2
