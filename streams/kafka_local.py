"""A single-node Apache Kafka (KRaft) on 127.0.0.1 for development, tests and the demo.

The broker's jars come from Maven Central through Maven, once, into the user's cache; the broker
runs with the machine's Java. Nothing here is used in production, where any Kafka cluster will do.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from streams.errors import StormvarselError
from streams.log_setup import get_logger
from streams.settings import Settings

log = get_logger(__name__)

MIN_JAVA = 17
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
DEPENDENCY_PLUGIN_VERSION = "3.8.1"
COMPOSE_HINT = "or run Kafka in a container instead: `docker compose up -d kafka`"
#: kafka.log (the broker's console output) is rotated at a start once it is larger than this.
LOG_ROTATE_BYTES = 20 * 1024 * 1024


class LocalKafkaError(StormvarselError):
    """The local broker cannot be installed, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class SaslSslListener:
    """Serve clients over TLS with SASL/SCRAM instead of plaintext (for testing secured clients).

    The broker's client port speaks SASL_SSL, and so does the broker's own inter-broker traffic;
    only the KRaft controller listener stays plaintext on 127.0.0.1 (KRaft keeps SCRAM
    credentials in its metadata, so the controller cannot authenticate with them). The SCRAM
    users are written into the metadata when the storage is formatted; the first one is the
    broker's own inter-broker identity.
    """

    keystore: Path  # PKCS#12 with the broker's key and certificate chain
    keystore_password: str
    cafile: Path  # PEM CA that signed the broker certificate (the broker's own trust store)
    users: tuple[tuple[str, str], ...]  # (name, password); at least one
    mechanism: str = "SCRAM-SHA-512"

    def __post_init__(self) -> None:
        if not self.users:
            raise ValueError("a SASL_SSL listener needs at least one SCRAM user")
        if self.mechanism not in {"SCRAM-SHA-256", "SCRAM-SHA-512"}:
            raise ValueError(f"expected SCRAM-SHA-256 or SCRAM-SHA-512, got {self.mechanism!r}")
        for name, password in self.users:
            # Both end up inside Kafka's own "[name=..,password=..]" and JAAS quoting.
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name + password):
                raise ValueError("SCRAM user names and passwords here must be [A-Za-z0-9._-]")

    @property
    def broker_user(self) -> tuple[str, str]:
        return self.users[0]

    def properties(self) -> dict[str, str]:
        name, password = self.broker_user
        prefix = f"listener.name.sasl_ssl.{self.mechanism.lower()}"
        return {
            "sasl.enabled.mechanisms": self.mechanism,
            "sasl.mechanism.inter.broker.protocol": self.mechanism,
            f"{prefix}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{name}" password="{password}";'
            ),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": self.keystore_password,
            "ssl.key.password": self.keystore_password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.cafile),
            "ssl.endpoint.identification.algorithm": "https",
        }

    def format_arguments(self) -> list[str]:
        args: list[str] = []
        for name, password in self.users:
            args += ["--add-scram", f"{self.mechanism}=[name={name},password={password}]"]
        return args

    def client_kwargs(self) -> dict[str, object]:
        """kafka-python arguments for the broker's own readiness probe."""
        name, password = self.broker_user
        return {
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.cafile),
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": name,
            "sasl_plain_password": password,
        }


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    version: str
    reachable: bool = False
    uptime_s: float | None = None


def _pom(version: str) -> str:
    deps = [
        ("org.apache.kafka", "kafka_2.13", version),
        # Kafka's own pom leaves the logging backend to the distribution; we pick log4j2 as it does.
        ("org.slf4j", "slf4j-api", SLF4J_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
    ]
    dep_xml = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.stormvarsel</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dep_xml}
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>{DEPENDENCY_PLUGIN_VERSION}</version>
  </plugin></plugins></build>
</project>
"""


_LOG4J2_YAML = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: state.change.logger
        level: WARN
"""


def java_major_version(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _seconds(value: float) -> str:
    """A duration for a message: ``0.05 s`` and ``0.5 s`` (never ``0 s``), ``2.5 s``, ``60 s``."""
    if value >= 10:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.1f}".removesuffix(".0") + " s"
    return f"{value:.2g} s"


def _new_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on ``path``; ``on_wait`` is called first if another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class LocalKafka:
    """Install, start, stop and inspect one local broker bound to 127.0.0.1."""

    def __init__(
        self,
        *,
        version: str,
        data_dir: Path,
        cache_dir: Path,
        port: int = 9092,
        controller_port: int = 9094,
        heap: str = "512m",
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        self.version = version
        self.data_dir = data_dir.expanduser().resolve()
        self.cache_dir = cache_dir.expanduser().resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        #: When set, the client port speaks SASL_SSL (SCRAM) instead of PLAINTEXT.
        self.sasl_ssl = sasl_ssl
        self._child: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, data_dir: Path | None = None) -> LocalKafka:
        return cls(
            version=settings.kafka_version,
            data_dir=data_dir or settings.kafka_local_data_dir,
            cache_dir=settings.cache_dir,
            port=settings.kafka_local_port,
            controller_port=settings.kafka_local_controller_port,
            heap=settings.kafka_local_heap,
        )

    # --- paths ---
    @property
    def install_dir(self) -> Path:
        return self.cache_dir / "kafka" / self.version

    @property
    def libs_dir(self) -> Path:
        return self.install_dir / "libs"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / ".kafka.lock"

    @contextlib.contextmanager
    def _exclusive(self, say: Callable[[str], None]) -> Iterator[None]:
        """Held through a whole start or stop: two at once on one data directory used to start
        two brokers, and the loser deleted the winner's PID file, orphaning it."""
        self._ensure_data_dir()

        def waiting() -> None:
            log.info("kafka.lock_wait", data_dir=str(self.data_dir))
            say(f"Another start or stop of the broker in {self.data_dir} is under way; waiting ...")

        with _file_lock(self.lock_file, on_wait=waiting):
            yield

    def _ensure_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(self.data_dir, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise LocalKafkaError(
                f"cannot use {self.data_dir} as the Kafka data directory "
                f"({exc.strerror or exc}); choose another with --data-dir or "
                "STORMVARSEL_KAFKA_LOCAL_DATA_DIR"
            ) from None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- install ---
    def is_installed(self) -> bool:
        return (self.install_dir / ".complete").exists()

    def ensure_installed(self, say: Callable[[str], None] = lambda _msg: None) -> Path:
        """Fetch the broker's jars from Maven Central once; later calls return at once."""
        if self.is_installed():
            return self.libs_dir
        try:
            (self.cache_dir / "kafka").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalKafkaError(
                f"cannot use {self.cache_dir} as the cache directory ({exc.strerror or exc}); "
                "choose another with STORMVARSEL_CACHE_DIR"
            ) from None
        lock = self.cache_dir / "kafka" / f".{self.version}.lock"
        with _file_lock(lock, on_wait=lambda: say("Waiting for another fetch of Kafka ...")):
            if self.is_installed():
                return self.libs_dir
            mvn = shutil.which("mvn")
            if mvn is None:
                raise LocalKafkaError(
                    "Maven is needed once to fetch Apache Kafka from Maven Central "
                    "(Debian/Ubuntu: apt-get install maven), " + COMPOSE_HINT
                )
            say(f"Fetching Apache Kafka {self.version} from Maven Central (once) ...")
            self.install_dir.mkdir(parents=True, exist_ok=True)
            (self.install_dir / "pom.xml").write_text(_pom(self.version), encoding="utf-8")
            staging = self.install_dir / "libs.partial"
            shutil.rmtree(staging, ignore_errors=True)
            started = time.monotonic()
            result = subprocess.run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "-f",
                    str(self.install_dir / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
                raise LocalKafkaError(
                    f"Maven could not fetch Apache Kafka {self.version} "
                    f"(exit {result.returncode}):\n{tail}"
                )
            shutil.rmtree(self.libs_dir, ignore_errors=True)
            staging.rename(self.libs_dir)
            (self.install_dir / ".complete").write_text(self.version, encoding="utf-8")
            jars = len(list(self.libs_dir.glob("*.jar")))
            log.info(
                "kafka.installed",
                version=self.version,
                jars=jars,
                seconds=round(time.monotonic() - started, 1),
            )
        return self.libs_dir

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise LocalKafkaError(
                f"Java {MIN_JAVA} or newer is needed to run the local Kafka broker "
                f"(Debian/Ubuntu: apt-get install openjdk-{MIN_JAVA}-jre-headless), " + COMPOSE_HINT
            )
        major = java_major_version(java)
        if major is None or major < MIN_JAVA:
            found = f"Java {major}" if major else "a Java whose version could not be read"
            raise LocalKafkaError(
                f"Apache Kafka 4 needs Java {MIN_JAVA} or newer, found {found} at {java}; "
                f"install openjdk-{MIN_JAVA}-jre-headless, " + COMPOSE_HINT
            )
        return java

    # --- process state ---
    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_our_broker(self, pid: int) -> bool:
        """True when ``pid`` is alive and is this data directory's broker (not a reused pid)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        return b"kafka.Kafka" in cmdline and str(self.properties_file).encode() in cmdline

    def status(self) -> KafkaStatus:
        pid = self._read_pid()
        running = pid is not None and self._is_our_broker(pid)
        uptime = None
        if running:
            with contextlib.suppress(OSError):
                uptime = time.time() - self.pid_file.stat().st_mtime
        # The running broker's own port: the settings may name another since it started.
        port = (self._configured_port() or self.port) if running else self.port
        return KafkaStatus(
            running=running,
            pid=pid if running else None,
            bootstrap=f"127.0.0.1:{port}",
            data_dir=self.data_dir,
            version=self.version,
            reachable=running and self._probe(timeout_s=5.0, port=port),
            uptime_s=uptime,
        )

    def _configured_port(self) -> int | None:
        """The client port in the running broker's properties (settings may name another)."""
        try:
            text = self.properties_file.read_text(encoding="utf-8")
        except OSError:
            return None
        found = re.search(r"^advertised\.listeners=\w+://127\.0\.0\.1:(\d+)$", text, re.M)
        return int(found.group(1)) if found else None

    def _forget_pid(self, pid: int) -> None:
        """Delete the PID file if it still names ``pid`` (never another start's broker)."""
        if self._read_pid() == pid:
            self.pid_file.unlink(missing_ok=True)

    def _rotate_log(self) -> None:
        """Keep the broker's console log from growing forever: past ``LOG_ROTATE_BYTES`` at a
        start it becomes ``kafka.log.1`` (replacing the one before), and a new one begins."""
        with contextlib.suppress(OSError):
            if self.log_file.stat().st_size > LOG_ROTATE_BYTES:
                self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))

    # --- start / stop ---
    @property
    def client_protocol(self) -> str:
        return "SASL_SSL" if self.sasl_ssl is not None else "PLAINTEXT"

    def _write_config(self) -> None:
        client = self.client_protocol
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"{client}://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"{client}://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": client,
            "listener.security.protocol.map": f"{client}:{client},CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created on purpose (`stormvarsel topics create`, the worker): a typo
            # in a topic name should fail loudly, not create a one-partition topic.
            "auto.create.topics.enable": "false",
            "log.retention.hours": "-1",
        }
        if self.sasl_ssl is not None:
            props.update(self.sasl_ssl.properties())
        text = "".join(f"{key}={value}\n" for key, value in props.items())
        # With a secured listener the file holds the keystore and inter-broker passwords.
        self.properties_file.touch(mode=0o600)
        self.properties_file.chmod(0o600)
        self.properties_file.write_text(text, encoding="utf-8")
        (self.data_dir / "log4j2.yaml").write_text(_LOG4J2_YAML, encoding="utf-8")

    def _format_storage(self, java: str) -> None:
        if (self.log_dirs / "meta.properties").exists():
            return
        result = subprocess.run(
            [
                java,
                "-cp",
                f"{self.libs_dir}/*",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                _new_cluster_id(),
                "-c",
                str(self.properties_file),
                *(self.sasl_ssl.format_arguments() if self.sasl_ssl else []),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting the Kafka data directory {self.log_dirs} failed: "
                f"{(result.stderr or result.stdout).strip()[-500:]}"
            )

    def start(self, timeout_s: float = 60.0, say: Callable[[str], None] = lambda _m: None) -> bool:
        """Start the broker and wait until it serves clients. False when it was already running.

        Interrupted (Ctrl-C) while waiting, it stops the broker it launched before raising."""
        with self._exclusive(say):
            pid = self._read_pid()
            if pid is not None and self._is_our_broker(pid):
                return False
            return self._start(timeout_s, say)

    def _start(self, timeout_s: float, say: Callable[[str], None]) -> bool:
        java = self._java()
        self.ensure_installed(say)
        for port in (self.port, self.controller_port):
            if port_in_use(port):
                raise LocalKafkaError(
                    f"port {port} on 127.0.0.1 is already in use by another program; stop it or "
                    "choose other ports (STORMVARSEL_KAFKA_LOCAL_PORT, "
                    "STORMVARSEL_KAFKA_LOCAL_CONTROLLER_PORT)"
                )
        self._write_config()
        self._format_storage(java)
        self._rotate_log()
        heap = self.heap
        command = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{self.libs_dir}/*",
            "kafka.Kafka",
            str(self.properties_file),
        ]
        with self.log_file.open("ab") as log_handle:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.data_dir,
            )
        self._child = child
        try:  # from the launch on: a Ctrl-C before the PID file is written must not orphan it
            self.pid_file.write_text(str(child.pid), encoding="utf-8")
            log.info("kafka.starting", pid=child.pid, bootstrap=self.bootstrap)
            self._wait_ready(child, timeout_s)
        except KeyboardInterrupt:
            say(f"Interrupted: stopping the broker this start launched (pid {child.pid}) ...")
            log.warning("kafka.start_interrupted", pid=child.pid, action="stopping it")
            self._stop_pid(child.pid, timeout_s=30.0)
            say("Stopped it: no broker was left running.")
            raise
        return True

    def _wait_ready(self, child: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.poll() is not None:
                self._forget_pid(child.pid)
                raise LocalKafkaError(
                    f"the Kafka broker exited with code {child.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if self._probe(timeout_s=2.0):
                return
            time.sleep(0.2)
        self._stop_pid(child.pid, timeout_s=30.0)
        raise LocalKafkaError(
            f"the Kafka broker did not become ready within {_seconds(timeout_s)}; "
            f"last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def _probe(self, timeout_s: float, port: int | None = None) -> bool:
        """True when the broker on ``port`` (default: ours) answers a metadata request and has
        an active controller."""
        port = self.port if port is None else port
        if not port_in_use(port):
            return False
        from kafka.errors import KafkaError

        from streams.kafka_clients import ClosingAdminClient

        timeout_ms = int(timeout_s * 1000)
        try:
            # Closing: a probe that cannot bootstrap would leave kafka-python's thread behind.
            admin = ClosingAdminClient(
                bootstrap_servers=f"127.0.0.1:{port}",
                request_timeout_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
                client_id="stormvarsel-probe",
                **(self.sasl_ssl.client_kwargs() if self.sasl_ssl else {}),
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            cluster = admin.describe_cluster()
            return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) != -1
        except (KafkaError, OSError, ValueError):
            return False
        finally:
            admin.close()

    def stop(self, timeout_s: float = 30.0, say: Callable[[str], None] = lambda _m: None) -> bool:
        """Stop the broker and wait until its process is gone. False when it was not running."""
        if not self.data_dir.is_dir():
            return False
        with self._exclusive(say):
            pid = self._read_pid()
            if pid is None or not self._is_our_broker(pid):
                if pid is not None:
                    self._forget_pid(pid)  # stale: its broker is gone
                return False
            self._stop_pid(pid, timeout_s)
            return True

    def _stop_pid(self, pid: int, timeout_s: float) -> None:
        self._signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout_s):
            log.warning("kafka.kill", pid=pid, reason=f"no exit within {_seconds(timeout_s)}")
            self._signal(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self._forget_pid(pid)
        log.info("kafka.stopped", pid=pid)

    @staticmethod
    def _signal(pid: int, signum: signal.Signals) -> None:
        # The broker leads its own session, so its process group holds it and anything it spawned.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._child is not None and self._child.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._child.wait(timeout=0.2)
            if not self._is_our_broker(pid):
                return True
            time.sleep(0.1)
        return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
