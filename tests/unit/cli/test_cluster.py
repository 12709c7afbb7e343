"""`lockflow cluster`'s own logic: options, the shared environment, keys made once, whose pid is whose."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from lockflow.cluster import (
    ClusterError,
    ClusterOptions,
    ClusterState,
    Member,
    cluster_root,
    is_running,
    member_logs,
    parse_replicas,
    process_start_time,
    shared_env,
    stop,
    tail,
)
from lockflow.cluster import _members as members
from lockflow.common.errors import InvalidInput
from lockflow.common.runtime import WORKER_NAMES

SERVER = "postgresql+psycopg2://lockflow:pw@db.example:5432/lockflow"


def test_replicas_are_parsed_per_worker_and_anything_else_is_refused_by_name() -> None:
    assert parse_replicas(["quality=2", "ingest=3"]) == {"quality": 2, "ingest": 3}
    for wrong, why in [
        ("gateway=2", "must be one of"),
        ("quality", "whole number"),
        ("quality=0", "whole number"),
        ("quality=9", "whole number"),
        ("quality=two", "whole number"),
    ]:
        with pytest.raises(InvalidInput, match=why) as refused:
            parse_replicas([wrong])
        assert repr(wrong) in str(refused.value)


def test_every_worker_gets_its_replicas_then_the_auth_service_and_the_gateway() -> None:
    names = [name for name, _ in members({"quality": 3})]
    assert names[: len(WORKER_NAMES) + 2].count("quality") == 1
    assert {"quality-2", "quality-3"} <= set(names)
    assert names[-2:] == ["auth", "gateway"]
    assert len(names) == len(WORKER_NAMES) + 2 + 2


def test_a_cluster_name_must_be_a_plain_word(tmp_path: Path) -> None:
    assert cluster_root(tmp_path, "team-a_2") == tmp_path / "clusters" / "team-a_2"
    for bad in ("../up", "a b", "", "x" * 41, "a/b"):
        with pytest.raises(InvalidInput, match="letters, digits"):
            cluster_root(tmp_path, bad)


def test_a_named_cluster_has_its_own_database_and_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKFLOW_DATABASE_URL", SERVER)
    named = shared_env(ClusterOptions(home=tmp_path, name="blue"), tmp_path / "blue")
    assert named["LOCKFLOW_DATABASE_URL"].endswith("@db.example:5432/lockflow_blue")
    assert named["LOCKFLOW_TOPIC_PREFIX"] == "lockflow-blue"
    default = shared_env(ClusterOptions(home=tmp_path), tmp_path / "default")
    assert default["LOCKFLOW_DATABASE_URL"] == SERVER and default["LOCKFLOW_TOPIC_PREFIX"] == "lockflow"
    # A URL given on the command line is used as it is, whatever the name.
    given = shared_env(ClusterOptions(home=tmp_path, name="blue", database_url=SERVER), tmp_path / "b2")
    assert given["LOCKFLOW_DATABASE_URL"] == SERVER


def test_every_process_shares_one_home_key_and_store(tmp_path: Path) -> None:
    root = tmp_path / "c"
    env = shared_env(ClusterOptions(home=tmp_path), root)
    assert env["LOCKFLOW_MODE"] == "distributed" and env["LOCKFLOW_ENVIRONMENT"] == "production"
    assert env["LOCKFLOW_HOME"] == str(root / "home")
    assert env["LOCKFLOW_ARTIFACT_DIR"] == str(root / "artifacts")
    assert json.loads(env["LOCKFLOW_ALLOWED_DIRS"]) == [str(root / "data")] and (root / "data").is_dir()
    s3 = shared_env(ClusterOptions(home=tmp_path, artifact_url="s3://bucket/p"), root)
    assert s3["LOCKFLOW_ARTIFACT_URL"] == "s3://bucket/p" and "LOCKFLOW_ARTIFACT_DIR" not in s3


def test_the_keys_are_made_once_private_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "c"
    first = shared_env(ClusterOptions(home=tmp_path), root)
    key = Path(first["LOCKFLOW_SIGNING_KEY_FILE"])
    pem = key.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key.stat().st_mode & 0o777 == (root / "secret-key").stat().st_mode & 0o777 == 0o600
    again = shared_env(ClusterOptions(home=tmp_path), root)
    assert key.read_bytes() == pem and again["LOCKFLOW_SECRET_KEY"] == first["LOCKFLOW_SECRET_KEY"]
    assert len(first["LOCKFLOW_SECRET_KEY"]) >= 48


def _member(process: subprocess.Popen[bytes], started: int | None, tmp_path: Path) -> Member:
    log = tmp_path / "sleep.log"
    log.write_text("one\ntwo\nthree\n")
    return Member(
        name="quality-2",
        service="quality",
        pid=process.pid,
        started=started if started is not None else -1,
        ready_url="http://127.0.0.1:9/readyz",
        log=str(log),
    )


def test_down_stops_its_own_processes_and_leaves_a_reused_pid_alone(tmp_path: Path) -> None:
    ours = subprocess.Popen(["sleep", "60"])
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        mine = _member(ours, process_start_time(ours.pid), tmp_path)
        # The same pid with another start time: the system gave the pid to another program since.
        reused = _member(stranger, (process_start_time(stranger.pid) or 0) + 1, tmp_path)
        assert is_running(mine) and not is_running(reused)
        state = ClusterState("t", str(tmp_path), "u", "a", "d", "p", members=[mine, reused])
        state.save()
        assert stop(state, wait_seconds=5) == ["quality-2"]
        assert ours.wait(timeout=5) == -15  # SIGTERM
        time.sleep(0.2)
        assert stranger.poll() is None, "a process that is not the cluster's was stopped"
        assert not (tmp_path / "cluster.json").exists()
    finally:
        for process in (ours, stranger):
            process.kill()
            process.wait()


def test_a_dead_or_reaped_pid_is_not_running(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert process_start_time(gone.pid) is None
    assert process_start_time(os.getpid()) is not None


def test_the_state_file_round_trips_and_a_missing_one_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="lockflow cluster up"):
        ClusterState.load(tmp_path)
    member = Member("gateway", "gateway", 1, 2, "http://x/readyz", str(tmp_path / "g.log"))
    ClusterState("n", str(tmp_path), "u", "a", "d", "p", members=[member]).save()
    assert ClusterState.load(tmp_path).members == [member]


def test_logs_are_chosen_by_service_or_process_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    log = tmp_path / "q.log"
    log.write_text("".join(f"line {n}\n" for n in range(500)))
    quality = Member("quality", "quality", 1, 2, "r", str(log))
    replica = Member("quality-2", "quality", 3, 4, "r", str(log))
    gateway = Member("gateway", "gateway", 5, 6, "r", str(log))
    state = ClusterState("n", str(tmp_path), "u", "a", "d", "p", members=[quality, replica, gateway])
    assert member_logs(state, "quality") == [quality, replica]
    assert member_logs(state, "quality-2") == [replica]
    assert member_logs(state, None) == state.members
    with pytest.raises(ClusterError, match=r"no process 'ingest'.*it has: gateway, quality"):
        member_logs(state, "ingest")
    assert tail(log, 2) == "line 498\nline 499"
