"""Static checks of the deployment files: docker-compose.yml and everything under deploy/.

Nothing here needs Docker. The files are parsed and cross-checked against each other and against
the code (the settings, the brands loader, the worker's metrics), so a renamed setting, a wrong
port or a missing mounted file fails here instead of on a production host. Where promtool and
amtool are installed (Debian packages ``prometheus`` and ``prometheus-alertmanager``), the
Prometheus and Alertmanager configs are also checked by the real tools.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from detectors.config import DetectorConfig
from streams.brands import load_brands
from streams.local_services import compose_tool_path
from streams.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES = DEPLOY / "prometheus" / "rules"
PROMETHEUS_TESTS = DEPLOY / "prometheus" / "tests"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
GRAFANA = DEPLOY / "grafana"
GRAFANA_DATASOURCES = GRAFANA / "provisioning" / "datasources"
GRAFANA_DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards"
GRAFANA_DASHBOARDS = GRAFANA / "dashboards"

WORKER = "worker"
WORKER_JOB = "stormvarsel-worker"
TOOL_TIMEOUT_S = 60

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR and the escape $$.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


# --- helpers -------------------------------------------------------------------------------------
#: The variables compose refuses to start without (``${VAR:?message}``), with the value a host
#: sets: secrets, which must not have a default anyone can read in this file.
REQUIRED = {"GRAFANA_ADMIN_PASSWORD": "a-long-admin-password-set-on-the-host"}


def interpolate(value: Any, where: str) -> str:
    """Resolve compose ``${...}`` references as on a host that sets only the REQUIRED variables.

    Every other reference must carry a default: a deployment must work from the file alone.
    """
    text = str(value)

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        if match.group("op") in {":-", "-"}:
            return match.group("arg")
        if name in REQUIRED and match.group("op") in {":?", "?"}:
            return REQUIRED[name]
        pytest.fail(f"{where}: ${{{name}}} has no default (use ${{{name}:-value}})")

    return _INTERPOLATION.sub(replace, text)


def load_yaml(path: Path) -> Any:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose.get("services") or {}
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def environment(compose: dict[str, Any], name: str) -> dict[str, str]:
    """A service's environment as plain strings, list or mapping form, interpolated."""
    raw = service(compose, name).get("environment") or {}
    if isinstance(raw, list):
        pairs = [str(item).partition("=") for item in raw]
        raw = {key: value for key, _, value in pairs}
    return {
        str(key): interpolate("" if value is None else value, f"{name}.environment.{key}")
        for key, value in raw.items()
    }


def published_ports(compose: dict[str, Any], name: str) -> dict[int, int]:
    """container port -> host port for a service's ``ports`` (short or long syntax)."""
    ports: dict[int, int] = {}
    for entry in service(compose, name).get("ports") or []:
        if isinstance(entry, dict):
            container = int(interpolate(entry["target"], f"{name}.ports"))
            host = int(interpolate(entry.get("published", container), f"{name}.ports"))
        else:
            spec = interpolate(entry, f"{name}.ports").split("/")[0]
            parts = spec.rsplit(":", 2)
            assert all(p.isdigit() for p in parts[-2:]), f"{name}: unsupported port {entry!r}"
            container = int(parts[-1])
            host = int(parts[-2]) if len(parts) >= 2 else container
        ports[container] = host
    return ports


def published_addresses(compose: dict[str, Any], name: str) -> dict[int, str]:
    """container port -> host address it is published on ("" = every interface)."""
    addresses: dict[int, str] = {}
    for entry in service(compose, name).get("ports") or []:
        if isinstance(entry, dict):
            container = int(interpolate(entry["target"], f"{name}.ports"))
            address = interpolate(entry.get("host_ip", ""), f"{name}.ports")
        else:
            spec = interpolate(entry, f"{name}.ports").split("/")[0]
            parts = spec.rsplit(":", 2)
            container = int(parts[-1])
            address = parts[0] if len(parts) == 3 else ""
        addresses[container] = address.strip("[]")
    return addresses


def mounts(compose: dict[str, Any], name: str) -> list[tuple[str, str, bool]]:
    """(source, container target, is_bind) for every volume of a service."""
    found: list[tuple[str, str, bool]] = []
    for entry in service(compose, name).get("volumes") or []:
        if isinstance(entry, dict):
            source = interpolate(entry.get("source", ""), f"{name}.volumes")
            target = interpolate(entry["target"], f"{name}.volumes")
            is_bind = entry.get("type") == "bind"
        else:
            source, _, rest = interpolate(entry, f"{name}.volumes").partition(":")
            target = rest.split(":")[0]
            is_bind = source.startswith((".", "/", "~"))
        found.append((source, target, is_bind))
    return found


def host_path(source: str) -> Path:
    """The repository path of a relative bind-mount source (compose resolves it from its dir)."""
    assert source.startswith(("./", "../")), (
        f"bind mount {source!r}: expected a path relative to the repository (./...)"
    )
    path = (COMPOSE_FILE.parent / source).resolve()
    assert path.is_relative_to(ROOT), f"bind mount {source!r} points outside the repository"
    return path


def host_path_of_container_path(compose: dict[str, Any], name: str, container_path: str) -> Path:
    """Map a path inside a service's container back to the repository through its bind mounts."""
    wanted = PurePosixPath(container_path)
    best: tuple[int, Path] | None = None
    for source, target, is_bind in mounts(compose, name):
        mount_point = PurePosixPath(target)
        if not is_bind or not (wanted == mount_point or mount_point in wanted.parents):
            continue
        depth = len(mount_point.parts)
        if best is None or depth > best[0]:
            best = (depth, host_path(source).joinpath(*wanted.relative_to(mount_point).parts))
    assert best is not None, f"{name}: {container_path} is not bind-mounted from the repository"
    return best[1]


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    assert sep and host and port.isdigit(), f"expected host:port, got {address!r}"
    return host, int(port)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag."""
    reference, _, digest = image.partition("@")
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = reference.rpartition(":")
        return repository, tag, digest or None
    return reference, None, digest or None


def dockerfile_path(compose: dict[str, Any], name: str) -> Path:
    build = service(compose, name).get("build")
    assert build is not None, f"{name} has no build section"
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_FILE.parent / interpolate(build.get("context", "."), name)).resolve()
    return context / interpolate(build.get("dockerfile", "Dockerfile"), name)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_env(path: Path) -> dict[str, str]:
    """ENV values of the final stage (the runtime image)."""
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    env: dict[str, str] = {}
    for keyword, args in instructions[last_from:]:
        if keyword != "ENV":
            continue
        if "=" not in args.split()[0]:
            key, _, value = args.partition(" ")
            env[key] = value.strip()
            continue
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def settings_field(env_name: str) -> str:
    assert env_name.startswith(ENV_PREFIX), f"{env_name}: expected the {ENV_PREFIX} prefix"
    return env_name.removeprefix(ENV_PREFIX).lower()


def stormvarsel_env(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(ENV_PREFIX)}


def exported_metric_names() -> set[str]:
    """Every series name the worker's metrics registry can export (labelled or not)."""
    from prometheus_client import REGISTRY

    import streams.metrics  # noqa: F401  (registers the worker's metrics)

    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
        "stateset": ("",),
        "unknown": ("",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def find_tool(name: str) -> str | None:
    """A binary on PATH, or in /usr/bin where Debian puts promtool and amtool."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/bin") / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def run_tool(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


def require_tool(name: str, package: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package!r}); its check did not run")
    return path


def all_dashboards() -> list[Path]:
    return sorted(GRAFANA_DASHBOARDS.rglob("*.json"))


def prometheus_exprs(node: Any) -> list[str]:
    """Every ``expr`` string in a JSON/YAML tree (dashboard targets, rule files)."""
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        for value in node.values():
            found.extend(prometheus_exprs(value))
        return found
    if isinstance(node, list):
        return [expr for item in node for expr in prometheus_exprs(item)]
    return []


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict) and data.get("services"), "docker-compose.yml has no services"
    return data


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    return load_yaml(PROMETHEUS_CONFIG)


@pytest.fixture(scope="module")
def alertmanager_config() -> dict[str, Any]:
    return load_yaml(ALERTMANAGER_CONFIG)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings also read STORMVARSEL_* from the environment: keep the test's own out."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


# --- compose structure ---------------------------------------------------------------------------
def test_expected_services_exist(compose: dict[str, Any]) -> None:
    expected = {"kafka", "topic-init", WORKER, "prometheus", "alertmanager", "grafana"}
    assert expected <= set(compose["services"])


def test_bind_mount_sources_exist_as_mounted(compose: dict[str, Any]) -> None:
    """A source ending in '/' must be a directory, any other a file: Docker would otherwise
    create the missing path as an empty directory and the service would start misconfigured."""
    problems: list[str] = []
    checked = 0
    for name in compose["services"]:
        for source, target, is_bind in mounts(compose, name):
            if not is_bind:
                continue
            checked += 1
            path = host_path(source)
            if source.endswith("/") and not path.is_dir():
                problems.append(f"{name}: {source} -> {target}: directory missing")
            elif not source.endswith("/") and not path.is_file():
                problems.append(f"{name}: {source} -> {target}: file missing")
    assert checked >= 6, f"expected the deploy/ bind mounts, found only {checked}"
    assert not problems, "\n".join(problems)


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name in compose["services"]:
        for source, target, is_bind in mounts(compose, name):
            if not is_bind and source:
                assert source in declared, f"{name}: volume {source!r} ({target}) not declared"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        assert "image" in svc or "build" in svc, f"{name}: neither image nor build"
        if "image" not in svc:
            continue
        image = interpolate(svc["image"], f"{name}.image")
        _, tag, digest = split_image(image)
        assert digest or tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} uses the moving 'latest' tag"


def test_worker_dockerfile_exists_and_topic_init_uses_the_same_image(
    compose: dict[str, Any],
) -> None:
    dockerfile = dockerfile_path(compose, WORKER)
    assert dockerfile.is_file(), f"worker Dockerfile {dockerfile} is missing"
    assert dockerfile.resolve() == (DEPLOY / "worker" / "Dockerfile").resolve()
    assert dockerfile_path(compose, "topic-init") == dockerfile
    worker, topic_init = service(compose, WORKER), service(compose, "topic-init")
    assert topic_init.get("image") == worker.get("image")
    command = topic_init.get("command")
    command = command.split() if isinstance(command, str) else list(command or [])
    assert command[:2] == ["topics", "create"], f"topic-init runs {command!r}"


def test_start_order(compose: dict[str, Any]) -> None:
    kafka = service(compose, "kafka")
    assert kafka.get("healthcheck", {}).get("test"), "kafka needs a healthcheck to gate topic-init"
    topic_init_deps = service(compose, "topic-init").get("depends_on") or {}
    assert topic_init_deps.get("kafka", {}).get("condition") == "service_healthy"
    worker_deps = service(compose, WORKER).get("depends_on") or {}
    assert worker_deps.get("topic-init", {}).get("condition") == "service_completed_successfully"
    assert str(service(compose, "topic-init").get("restart")) == "no"


# --- worker settings -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", [WORKER, "topic-init"])
def test_stormvarsel_env_names_are_settings_fields(compose: dict[str, Any], name: str) -> None:
    env = environment(compose, name)
    assert stormvarsel_env(env), f"{name} sets no {ENV_PREFIX}* variables"
    unknown = [key for key in env if settings_field(key) not in Settings.model_fields]
    assert not unknown, f"{name}: not Settings fields: {unknown}"


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("name", [WORKER, "topic-init"])
def test_stormvarsel_env_values_validate(compose: dict[str, Any], name: str) -> None:
    env = stormvarsel_env(environment(compose, name))
    for key, value in env.items():
        Settings(**{settings_field(key): value})  # raises ValidationError on a bad value
    together = Settings(**{settings_field(key): value for key, value in env.items()})
    for key, value in env.items():
        assert str(getattr(together, settings_field(key))) == value, key


@pytest.mark.usefixtures("clean_env")
def test_dockerfile_env_is_valid_settings(compose: dict[str, Any]) -> None:
    env = stormvarsel_env(dockerfile_env(dockerfile_path(compose, WORKER)))
    assert {"STORMVARSEL_WEB_HOST", "STORMVARSEL_DATA_DIR", "STORMVARSEL_BRANDS_FILE"} <= set(env)
    for key in env:
        assert settings_field(key) in Settings.model_fields, f"Dockerfile ENV {key}: not a field"
    Settings(**{settings_field(key): value for key, value in env.items()})
    assert env["STORMVARSEL_WEB_HOST"] == "0.0.0.0"


def test_dockerfile_runtime_contract(compose: dict[str, Any]) -> None:
    instructions = dockerfile_instructions(dockerfile_path(compose, WORKER))
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in instructions:
        by_keyword.setdefault(keyword, []).append(args)
    web_port = environment(compose, WORKER)["STORMVARSEL_WEB_PORT"]
    assert web_port in " ".join(by_keyword.get("EXPOSE", [])).split(), "EXPOSE != worker port"
    healthcheck = by_keyword["HEALTHCHECK"][-1]
    assert "/healthz" in healthcheck and f"'{web_port}'" in healthcheck
    user = by_keyword["USER"][-1].split(":")[0]
    assert user == "10001", f"runtime user is {user!r}, expected uid 10001"
    # Where the commands write by default (replay's report): the directory the user owns.
    data_dir = dict(
        pair.split("=", 1) for arg in by_keyword["ENV"] for pair in arg.split() if "=" in pair
    )["STORMVARSEL_DATA_DIR"]
    assert by_keyword["WORKDIR"][-1] == data_dir
    assert any(f"chown stormvarsel:stormvarsel {data_dir}" in run for run in by_keyword["RUN"])
    assert json.loads(by_keyword["ENTRYPOINT"][-1]) == ["stormvarsel"]
    assert json.loads(by_keyword["CMD"][-1]) == ["worker"]
    runs = " ".join(by_keyword["RUN"])
    # Locked dependencies, but torch from the CPU index and none of PyPI's CUDA wheels.
    assert "uv export --frozen --no-dev" in runs
    assert '--index-url "${TORCH_INDEX_URL}"' in runs and '"torch==${torch_version}"' in runs
    assert "grep -vE '^(torch|triton|nvidia-|cuda-)'" in runs
    assert any("download.pytorch.org/whl/cpu" in arg for arg in by_keyword["ARG"])
    assert "stormvarsel models install" in runs  # no model download when the worker starts


@pytest.mark.usefixtures("clean_env")
def test_brands_file_mounted_into_worker_loads(compose: dict[str, Any]) -> None:
    env = dockerfile_env(dockerfile_path(compose, WORKER)) | environment(compose, WORKER)
    brands_in_container = env["STORMVARSEL_BRANDS_FILE"]
    source = host_path_of_container_path(compose, WORKER, brands_in_container)
    assert source.is_file(), f"{source} (mounted at {brands_in_container}) is missing"
    brands = load_brands(source)
    assert brands.brands, f"{source.relative_to(ROOT)} lists no brands"


def test_detector_config_mounted_into_worker_loads(compose: dict[str, Any]) -> None:
    env = environment(compose, WORKER)
    in_container = env["STORMVARSEL_DETECTOR_CONFIG"]
    source = host_path_of_container_path(compose, WORKER, in_container)
    assert source.is_file(), f"{source} (mounted at {in_container}) is missing"
    config = DetectorConfig.from_yaml(source)
    assert config.baseline.timezone == "Europe/Oslo"
    assert config.replace(baseline=DetectorConfig().baseline) == DetectorConfig()


def test_worker_data_dir_is_a_volume(compose: dict[str, Any]) -> None:
    env = dockerfile_env(dockerfile_path(compose, WORKER)) | environment(compose, WORKER)
    targets = {target.rstrip("/") for _, target, _ in mounts(compose, WORKER)}
    assert env["STORMVARSEL_DATA_DIR"].rstrip("/") in targets


# --- ports and addresses between services -------------------------------------------------------
def test_worker_port_matches_env_and_prometheus_target(
    compose: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    web_port = int(environment(compose, WORKER)["STORMVARSEL_WEB_PORT"])
    assert web_port in published_ports(compose, WORKER), (
        f"worker publishes {published_ports(compose, WORKER)}, web port is {web_port}"
    )
    jobs = [j for j in prometheus_config["scrape_configs"] if j["job_name"] == WORKER_JOB]
    assert len(jobs) == 1, f"prometheus.yml needs one scrape job {WORKER_JOB!r}"
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets, f"scrape job {WORKER_JOB} has no targets"
    for target in targets:
        assert split_host_port(target) == (WORKER, web_port), f"scrape target {target}"


def test_prometheus_alerting_targets_alertmanager(
    compose: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    targets = [
        target
        for am in prometheus_config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for target in sc["targets"]
    ]
    assert targets, "prometheus.yml sends alerts nowhere"
    alertmanager_ports = published_ports(compose, "alertmanager")
    for target in targets:
        host, port = split_host_port(target)
        assert host == "alertmanager"
        assert port in alertmanager_ports, f"{target}: alertmanager listens on {alertmanager_ports}"


def kafka_listeners(value: str) -> dict[str, str]:
    """'NAME://host:port,...' -> {NAME: 'host:port'}."""
    listeners: dict[str, str] = {}
    for item in value.split(","):
        name, sep, address = item.strip().partition("://")
        assert sep, f"bad listener {item!r}"
        listeners[name] = address
    return listeners


def test_worker_bootstrap_matches_kafka_internal_listener(compose: dict[str, Any]) -> None:
    kafka_env = environment(compose, "kafka")
    inter_broker = kafka_env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
    advertised = kafka_listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    bound = kafka_listeners(kafka_env["KAFKA_LISTENERS"])
    internal = advertised[inter_broker]
    host, port = split_host_port(internal)
    assert host == "kafka", f"internal listener advertised as {internal}, service is 'kafka'"
    bound_port = bound[inter_broker].rpartition(":")[2]
    assert bound_port == str(port), f"{inter_broker} binds {bound[inter_broker]}, advertised {port}"
    for name in [WORKER, "topic-init"]:
        bootstrap = environment(compose, name)["STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS"]
        assert bootstrap.split(",") == [internal], f"{name} bootstraps from {bootstrap}"
    # Clients on the host use the EXTERNAL listener, which must be published on the same port.
    external_port = split_host_port(advertised["EXTERNAL"])[1]
    assert published_ports(compose, "kafka").get(external_port) == external_port
    controller = kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller not in advertised and controller in bound


def test_grafana_datasource_points_at_prometheus(compose: dict[str, Any]) -> None:
    datasources = [
        ds
        for path in sorted(GRAFANA_DATASOURCES.glob("*.y*ml"))
        for ds in (load_yaml(path).get("datasources") or [])
    ]
    prometheus = [ds for ds in datasources if ds.get("type") == "prometheus"]
    assert len(prometheus) == 1, f"expected one Prometheus data source, got {prometheus}"
    ds = prometheus[0]
    assert ds["uid"] == "prometheus"
    match = re.fullmatch(r"http://([^:/]+):(\d+)/?", ds["url"])
    assert match, f"data source URL {ds['url']!r}"
    assert match.group(1) == "prometheus"
    assert int(match.group(2)) in published_ports(compose, "prometheus")


def test_grafana_admin_password_and_anonymous_access(compose: dict[str, Any]) -> None:
    raw = service(compose, "grafana")["environment"]
    password = raw["GF_SECURITY_ADMIN_PASSWORD"]
    required = re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?(.+)\}", password)
    assert required, password  # compose refuses to start without it
    assert "set GRAFANA_ADMIN_PASSWORD" in required.group(1)  # and says what to do
    env = environment(compose, "grafana")
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == REQUIRED["GRAFANA_ADMIN_PASSWORD"]
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED", "false") == "false"


def test_no_password_has_a_default(compose: dict[str, Any]) -> None:
    """A default password is one anyone who reads this file knows (it was ``change-me``)."""
    found = 0
    for name, svc in compose["services"].items():
        raw = svc.get("environment") or {}
        items = raw.items() if isinstance(raw, dict) else (e.partition("=")[::2] for e in raw)
        for key, value in items:
            if not re.search(r"PASSWORD|SECRET|TOKEN", str(key), re.IGNORECASE):
                continue
            found += 1
            for match in _INTERPOLATION.finditer(str(value)):
                assert match.group("op") in {":?", "?"}, f"{name}.environment.{key}: {value}"
            assert "$" in str(value), f"{name}.environment.{key} is written into the file"
    assert found >= 1


def test_published_ports_listen_on_loopback_only(compose: dict[str, Any]) -> None:
    """Kafka (PLAINTEXT, no login), POST /mentions (no token in this file), Alertmanager's API
    (anyone could silence or fake pages) and Prometheus answer without authentication. A port
    published without an address listens on every interface, and Docker's own firewall rules
    let it through host firewalls such as ufw: publish on loopback; Grafana, which has a login,
    may be opened wider with GRAFANA_BIND_ADDRESS."""
    loopback = {"127.0.0.1", "::1", "localhost"}
    published = 0
    for name in compose["services"]:
        for port, address in published_addresses(compose, name).items():
            published += 1
            assert address in loopback, (
                f"{name}: port {port} is published on {address or 'every interface'}"
            )
    assert published >= 5
    raw = [str(entry) for entry in service(compose, "grafana")["ports"]]
    assert any(entry.startswith("${GRAFANA_BIND_ADDRESS:-127.0.0.1}:") for entry in raw), raw


def test_prometheus_lifecycle_api_is_off(compose: dict[str, Any]) -> None:
    """--web.enable-lifecycle lets anyone who reaches the port shut Prometheus down
    (POST /-/quit); nothing here reloads it that way."""
    command = service(compose, "prometheus").get("command") or []
    assert "--web.enable-lifecycle" not in command


# --- Prometheus, Alertmanager and Grafana contents ----------------------------------------------
def test_prometheus_rule_files_match_mounted_rules(
    compose: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    rule_files = prometheus_config.get("rule_files") or []
    assert rule_files, "prometheus.yml loads no rule files"
    for pattern in rule_files:
        host_pattern = host_path_of_container_path(compose, "prometheus", pattern)
        matches = sorted(host_pattern.parent.glob(host_pattern.name))
        assert matches, f"rule_files {pattern!r} matches nothing in {host_pattern.parent}"
        assert all(m.is_relative_to(PROMETHEUS_RULES) for m in matches)


def test_alertmanager_templates_match_mounted_files(
    compose: dict[str, Any], alertmanager_config: dict[str, Any]
) -> None:
    templates = alertmanager_config.get("templates") or []
    assert templates, "alertmanager.yml loads no templates"
    for pattern in templates:
        host_pattern = host_path_of_container_path(compose, "alertmanager", pattern)
        assert sorted(host_pattern.parent.glob(host_pattern.name)), f"{pattern!r} matches nothing"


def covering_bind_mount(compose: dict[str, Any], name: str, container_path: str) -> str:
    """The host source of the deepest bind mount of ``name`` that holds ``container_path``."""
    wanted = PurePosixPath(container_path)
    found = [
        (len(PurePosixPath(target).parts), source)
        for source, target, is_bind in mounts(compose, name)
        if is_bind and (wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents)
    ]
    assert found, f"{name}: {container_path} is not bind-mounted"
    return max(found)[1]


def config_flag(compose: dict[str, Any], name: str) -> str:
    command = service(compose, name).get("command") or []
    flags = [arg for arg in command if str(arg).startswith("--config.file=")]
    assert len(flags) == 1, f"{name}: expected one --config.file, got {command}"
    return str(flags[0]).partition("=")[2]


@pytest.mark.parametrize("name", ["prometheus", "alertmanager"])
def test_files_reloaded_on_sighup_are_mounted_by_directory(
    compose: dict[str, Any], name: str
) -> None:
    """README: after editing the rules or alertmanager.yml, send SIGHUP. A single-file bind mount
    keeps the inode it was started with, and git (a pull), ``sed -i`` and most editors write a
    new file and rename it over the old one: the reload then reads the old file and reports
    success. A directory mount shows the new file. So the config file and what it loads
    (rule files, templates) must each come through a directory mount."""
    config_path = config_flag(compose, name)
    config = load_yaml(host_path_of_container_path(compose, name, config_path))
    loaded = [config_path, *(config.get("rule_files") or []), *(config.get("templates") or [])]
    assert len(loaded) >= 2, f"{name}: expected the config file and what it loads, got {loaded}"
    for path in loaded:
        source = covering_bind_mount(compose, name, path)
        assert source.endswith("/") and host_path(source).is_dir(), (
            f"{name}: {path} comes from the single-file mount {source}: a SIGHUP after an "
            "edit that replaces the file reloads the old one; mount its directory"
        )


def test_alertmanager_routing(alertmanager_config: dict[str, Any]) -> None:
    """Every route names a defined receiver (routing and inhibition themselves are proven with
    amtool and a real Alertmanager in tests/test_alertmanager_config.py)."""
    route = alertmanager_config["route"]
    assert set(route["group_by"]) == {"alertname", "brand"}
    receivers = {r["name"] for r in alertmanager_config["receivers"]}
    assert route["receiver"] in receivers
    assert all(r["receiver"] in receivers for r in route.get("routes", []))
    assert any(
        'severity="critical"' in r["source_matchers"] for r in alertmanager_config["inhibit_rules"]
    )


def test_rules_have_runbooks_and_severity() -> None:
    rules = [
        rule
        for path in sorted(PROMETHEUS_RULES.glob("*.yml"))
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert "StormvarselWorkerDown" in {rule["alert"] for rule in rules}
    for rule in rules:
        assert rule.get("labels", {}).get("severity"), f"{rule['alert']}: no severity"
        for key in ("summary", "description", "runbook_url"):
            assert rule.get("annotations", {}).get(key), f"{rule['alert']}: no {key}"
        anchor = rule["annotations"]["runbook_url"].rpartition("#")[2]
        assert anchor == rule["alert"].lower(), f"{rule['alert']}: runbook anchor {anchor!r}"


def test_grafana_dashboard_provider_path_is_mounted(compose: dict[str, Any]) -> None:
    providers = [
        p
        for path in sorted(GRAFANA_DASHBOARD_PROVIDERS.glob("*.y*ml"))
        for p in (load_yaml(path).get("providers") or [])
    ]
    assert providers, "no Grafana dashboard provider"
    for provider in providers:
        source = host_path_of_container_path(compose, "grafana", provider["options"]["path"])
        assert source.resolve() == GRAFANA_DASHBOARDS.resolve()


def test_grafana_dashboards_are_valid() -> None:
    dashboards = all_dashboards()
    assert dashboards, f"no dashboards in {GRAFANA_DASHBOARDS.relative_to(ROOT)}"
    uids: dict[str, Path] = {}
    for path in dashboards:
        try:
            board = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            pytest.fail(f"{path.name}: invalid JSON: {exc}")
        uid = board.get("uid")
        assert uid, f"{path.name}: no uid"
        assert uid not in uids, f"{path.name}: uid {uid!r} also used by {uids[uid].name}"
        uids[uid] = path
        variables = (board.get("templating") or {}).get("list") or []
        datasource_vars = [
            v for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"
        ]
        assert datasource_vars, f"{path.name}: no Prometheus 'datasource' template variable"
        variable = "${" + datasource_vars[0]["name"] + "}"
        panels = board.get("panels") or []
        assert panels, f"{path.name}: no panels"
        for panel in panels:
            if panel.get("type") == "row":
                continue
            assert panel.get("datasource", {}).get("uid") == variable, (
                f"{path.name}: panel {panel.get('title')!r} does not use {variable}"
            )
    assert "stormvarsel-pipeline-health" in uids
    # The pages' dashboard links open the brand overview by uid, with its brand variable.
    from streams.alertmanager import Links

    link = Links(runbook_url="", grafana_url="http://grafana").dashboard(
        {"brand": "nordlys-energi", "start_ms": 7_200_000, "end_ms": None}
    )
    uid = link.split("/d/", 1)[1].split("/", 1)[0]
    assert uid in uids, f"pages link to dashboard uid {uid!r}, which is not provisioned"
    brand_board = json.loads(uids[uid].read_text(encoding="utf-8"))
    names = {v["name"] for v in brand_board["templating"]["list"]}
    assert "brand" in names and "var-brand=nordlys-energi" in link


def test_grafana_queries_use_rate_interval_and_existing_metrics() -> None:
    known = exported_metric_names()
    for path in all_dashboards():
        exprs = prometheus_exprs(json.loads(path.read_text(encoding="utf-8")))
        assert exprs, f"{path.name}: no queries"
        for expr in exprs:
            for window in re.findall(r"\b(?:rate|irate|increase)\([^\[]*\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", f"{path.name}: {expr!r} uses [{window}]"
            for metric in re.findall(r"\bstormvarsel_[A-Za-z0-9_:]+", expr):
                assert metric in known, f"{path.name}: {metric} is not exported by the worker"


def test_alert_rules_use_existing_metrics() -> None:
    known = exported_metric_names()
    for path in sorted(PROMETHEUS_RULES.glob("*.yml")):
        for expr in prometheus_exprs(load_yaml(path)):
            for metric in re.findall(r"\bstormvarsel_[A-Za-z0-9_:]+", expr):
                assert metric in known, f"{path.name}: {metric} is not exported by the worker"


# --- the real tools, where installed ------------------------------------------------------------
def test_promtool_check_config(compose: dict[str, Any], tmp_path: Path) -> None:
    promtool = require_tool("promtool", "prometheus")
    config = load_yaml(PROMETHEUS_CONFIG)
    rewritten: list[str] = []
    for index, pattern in enumerate(config.get("rule_files") or []):
        host_pattern = host_path_of_container_path(compose, "prometheus", pattern)
        copy = tmp_path / f"rules{index}"
        shutil.copytree(host_pattern.parent, copy)
        rewritten.append(str(copy / host_pattern.name))
    config["rule_files"] = rewritten
    config_copy = tmp_path / "prometheus.yml"
    config_copy.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    result = run_tool([promtool, "check", "config", str(config_copy)])
    output = result.stdout + result.stderr
    rule_count = len(list(PROMETHEUS_RULES.glob("*.yml")))
    assert f"SUCCESS: {rule_count} rule files found" in output, output


def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool", "prometheus")
    files = sorted(PROMETHEUS_RULES.glob("*.yml"))
    assert files
    run_tool([promtool, "check", "rules", *map(str, files)])


def test_promtool_rule_unit_tests() -> None:
    promtool = require_tool("promtool", "prometheus")
    tests = sorted(PROMETHEUS_TESTS.glob("*_test.yml"))
    assert (PROMETHEUS_TESTS / "pipeline_test.yml") in tests
    run_tool([promtool, "test", "rules", *map(str, tests)], cwd=ROOT)


def compose_promtool(compose: dict[str, Any]) -> tuple[str, Path]:
    """The Prometheus version the compose file runs, and where ``deploy/local.sh`` builds its
    promtool (from the Go module proxy)."""
    image = compose["services"]["prometheus"]["image"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", image), (
        f"the compose file's Prometheus is not pinned to vX.Y.Z: {image}"
    )
    version, path = compose_tool_path("promtool", "prom/prometheus", "promtool")
    assert version is not None and path is not None
    return version, path


def test_rules_on_the_composes_prometheus(compose: dict[str, Any]) -> None:
    """The rules run in production on the compose file's Prometheus (3.x), whose range windows
    exclude their start, where Debian's promtool (2.x) includes it: a rule at a boundary can
    fire on one and not the other. The unit tests must pass on both."""
    version, promtool = compose_promtool(compose)
    if not promtool.is_file():
        pytest.skip(
            f"promtool {version} not built (bash deploy/local.sh setup builds it with Go): "
            "the rules ran on Debian's promtool only"
        )
    files = sorted(PROMETHEUS_RULES.glob("*.yml"))
    run_tool([str(promtool), "check", "rules", *map(str, files)])
    tests = sorted(PROMETHEUS_TESTS.glob("*_test.yml"))
    run_tool([str(promtool), "test", "rules", *map(str, tests)], cwd=ROOT)


def compose_amtool(compose: dict[str, Any]) -> str:
    """The amtool of the compose file's Alertmanager, which ``deploy/local.sh`` builds (from the
    Go module proxy); skips when it is not built."""
    image = compose["services"]["alertmanager"]["image"]
    assert re.fullmatch(r"prom/alertmanager:v\d+\.\d+\.\d+", image), (
        f"the compose file's Alertmanager is not pinned to vX.Y.Z: {image}"
    )
    version, path = compose_tool_path("alertmanager", "prom/alertmanager", "amtool")
    if path is None or not path.is_file():
        pytest.skip(
            f"amtool {version} not built (bash deploy/local.sh setup builds it with Go): "
            "the configuration was checked with Debian's amtool only"
        )
    return str(path)


@pytest.mark.parametrize("version", ["debian", "compose"])
def test_amtool_check_config(compose: dict[str, Any], tmp_path: Path, version: str) -> None:
    """The configuration and templates pass both Debian's amtool and the amtool of the
    Alertmanager that production runs (the compose file's, which parses matchers and
    templates as that version does)."""
    if version == "debian":
        amtool = require_tool("amtool", "prometheus-alertmanager")
    else:
        amtool = compose_amtool(compose)
    config = load_yaml(ALERTMANAGER_CONFIG)
    rewritten: list[str] = []
    for index, pattern in enumerate(config.get("templates") or []):
        host_pattern = host_path_of_container_path(compose, "alertmanager", pattern)
        copy = tmp_path / f"templates{index}"
        shutil.copytree(host_pattern.parent, copy)
        rewritten.append(str(copy / host_pattern.name))
    config["templates"] = rewritten
    config_copy = tmp_path / "alertmanager.yml"
    config_copy.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    run_tool([amtool, "check-config", str(config_copy)])
    # The templates parse, and the named definitions render against amtool's sample alert.
    for glob_pattern in rewritten:
        names = re.findall(
            r'\{\{-?\s*define\s+"([^"]+)"',
            "".join(p.read_text(encoding="utf-8") for p in Path(glob_pattern).parent.glob("*")),
        )
        assert names, f"{glob_pattern}: no template definitions"
        for name in names:
            run_tool(
                [
                    amtool,
                    "template",
                    "render",
                    f"--template.glob={glob_pattern}",
                    f'--template.text={{{{ template "{name}" . }}}}',
                ]
            )


def test_the_worker_user_can_build_a_heads_encoder_in_the_model_cache(
    compose: dict[str, Any],
) -> None:
    """The image's model cache was root's (a+rX): a head of one's own
    (STORMVARSEL_SENTIMENT_HEAD) needs its encoder (``tuned/``) or layer set (``onnx/``) built
    beside the shipped one on first use, and the worker, uid 10001, could not write there. The
    shipped files stay root's (no ``chown -R``; tests/test_security_static.py); checked for real
    as an unprivileged user when this was changed (see docs/sentiment.md)."""
    path = dockerfile_path(compose, WORKER)
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    env = dockerfile_env(path)
    cache, hf_home = env["STORMVARSEL_CACHE_DIR"], env["HF_HOME"]
    assert hf_home.startswith(cache + "/"), "HF_HOME is not in the model cache"
    [install] = [
        args
        for keyword, args in instructions[last_from:]
        if keyword == "RUN" and "stormvarsel models install" in args
    ]
    e5 = re.search(r"\be5=(\S+)", install)
    assert e5 and e5.group(1) == f"{cache}/models/multilingual-e5-small", install
    chown = install.split("chown stormvarsel:stormvarsel", 1)[1].split("&&")[0].split()
    assert set(chown) == {'"${e5}/onnx"', '"${e5}/tuned"', '"${HF_HOME}"'}, chown
    assert install.index("chmod -R a+rX") < install.index("chown stormvarsel:stormvarsel")
