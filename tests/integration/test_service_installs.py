"""Each service installs from uv.lock on its own, with only its dependencies: every module imports,
and the service starts from that environment alone against the real broker and database."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import packages  # noqa: E402

UV = Path(sys.executable).parent / "uv"
SERVICES = [m for m in packages.members() if m.folder.parent.name == "services"]


def _install_alone(member: packages.Member, env: Path) -> None:
    run_env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(env), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [str(UV), "sync", "-q", "--frozen", "--no-dev", "--package", member.name, "--python", sys.executable],
        cwd=ROOT,
        env=run_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[packages.Member], Path]:
    """Each service's own environment, installed once for the session (both tests of a service use it)."""
    made: dict[str, Path] = {}

    def install(member: packages.Member) -> Path:
        if member.name not in made:
            env = tmp_path_factory.mktemp(member.name) / "env"
            _install_alone(member, env)
            made[member.name] = env
        return made[member.name]

    return install


def _modules(member: packages.Member) -> list[str]:
    names = []
    for path in sorted(member.package.rglob("*.py")):
        relative = path.relative_to(member.folder / "src").with_suffix("")
        names.append(".".join(part for part in relative.parts if part != "__init__"))
    return names


@pytest.mark.integration
@pytest.mark.parametrize("member", SERVICES, ids=lambda m: m.name)
def test_a_service_installs_alone_and_imports(
    member: packages.Member, installed: Callable[[packages.Member], Path]
) -> None:
    env = installed(member)
    python = env / "bin" / "python"
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([str(python), "-c", script, *_modules(member)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    listed = subprocess.run(
        [str(UV), "pip", "list", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout
    installed = {line.split()[0].lower() for line in listed.splitlines()[2:] if line.strip()}
    others = {m.name for m in SERVICES if m.name != member.name}
    assert not installed & others, f"{member.name} pulls in other services: {installed & others}"


WORKERS = [m for m in SERVICES if m.name.removeprefix("lockflow-") not in {"gateway", "auth"}]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(env_dir: Path, module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m MODULE` from the service's own environment, with only lockflow's settings given."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(env_dir / "bin" / "python"), "-m", module], env={**plain, **env}, stdout=out, stderr=out
        )


def _wait(process: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 180
    while not ready():
        text = log.read_text(errors="replace")
        assert process.poll() is None, f"exited {process.returncode}:\n{text[-3000:]}"
        assert time.monotonic() < deadline, f"not ready within 180 s:\n{text[-3000:]}"
        time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def service_env(
    tmp_path: Path, kafka_bootstrap: str, fresh_postgres: str, topic_prefix: str
) -> dict[str, str]:
    """What every process of a distributed deployment is told: the broker, a fresh database, one key."""
    from lockflow.auth.keys import generate_private_pem

    return {
        "LOCKFLOW_MODE": "distributed",
        "LOCKFLOW_ENVIRONMENT": "test",
        "LOCKFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOCKFLOW_DATABASE_URL": fresh_postgres,
        "LOCKFLOW_TOPIC_PREFIX": topic_prefix,
        "LOCKFLOW_HOME": str(tmp_path / "home"),
        "LOCKFLOW_SIGNING_KEY": generate_private_pem().decode(),
    }


@pytest.mark.integration
@pytest.mark.parametrize("member", WORKERS, ids=lambda m: m.name)
def test_a_worker_service_starts_from_its_own_environment(
    member: packages.Member,
    tmp_path: Path,
    service_env: dict[str, str],
    installed: Callable[[packages.Member], Path],
) -> None:
    env_dir = installed(member)
    name = member.name.removeprefix("lockflow-")
    log = tmp_path / f"{name}.log"
    process = _start(env_dir, f"lockflow.{name}.bootstrap", service_env, log)
    try:
        _wait(process, log, lambda: f"lockflow worker {name} ready" in log.read_text(errors="replace"))
    finally:
        _stop(process)


@pytest.mark.integration
def test_the_auth_service_and_the_gateway_start_from_their_own_environments(
    tmp_path: Path, service_env: dict[str, str], installed: Callable[[packages.Member], Path]
) -> None:
    import httpx

    by_name = {m.name: m for m in SERVICES}
    auth_env, gateway_env = installed(by_name["lockflow-auth"]), installed(by_name["lockflow-gateway"])
    auth_port, gateway_port = _free_port(), _free_port()
    auth_url = f"http://127.0.0.1:{auth_port}"

    def answers(url: str) -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    auth_log, gateway_log = tmp_path / "auth.log", tmp_path / "gateway.log"
    auth_settings = {**service_env, "LOCKFLOW_AUTH_PORT": str(auth_port)}
    auth = _start(auth_env, "lockflow.auth.app", auth_settings, auth_log)
    gateway = None
    try:
        _wait(auth, auth_log, lambda: answers(auth_url))
        env = {
            **service_env,
            "LOCKFLOW_PORT": str(gateway_port),
            "LOCKFLOW_JWKS_URL": f"{auth_url}/.well-known/jwks.json",
        }
        gateway = _start(gateway_env, "lockflow.gateway.bootstrap", env, gateway_log)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        _wait(gateway, gateway_log, lambda: answers(gateway_url))
        assert httpx.get(f"{gateway_url}/runs", timeout=10).status_code == 401  # a token is needed
        assert httpx.get(f"{auth_url}/.well-known/jwks.json", timeout=10).json()["keys"]
    finally:
        if gateway is not None:
            _stop(gateway)
        _stop(auth)
