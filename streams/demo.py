"""The README's first command: a brand storm end to end on this machine, then a clean stop.

It starts the local Kafka, a worker and, when their Debian packages are installed, Prometheus and
Alertmanager on 127.0.0.1. It plays the story of :mod:`streams.demo_scenario`: yesterday's calm
as a backfill, then the storm and the recovery minute by minute. A live view shows each brand's
last bucket, and the demo prints the page the on-call person receives and writes the post-mortem
report with ``stormvarsel replay``. Every run uses topics and a consumer group of its own, so
runs never mix.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from streams.alertmanager import Links, am_alerts
from streams.brands import load_brands
from streams.demo_scenario import Scenario, generate
from streams.errors import StormvarselError
from streams.kafka_clients import client_config
from streams.kafka_local import LocalKafka, free_port
from streams.local_services import (
    LocalAlertmanager,
    LocalPrometheus,
    WebhookReceiver,
    alertmanager_config,
    alertmanager_tool,
    find_binary,
)
from streams.settings import Settings
from streams.topics import ALERTS, MENTIONS, MENTIONS_DLQ, ensure_topics

if TYPE_CHECKING:
    from streams.replay.command import CommandOptions

REPO = Path(__file__).resolve().parents[1]
REPO_BRANDS = REPO / "deploy" / "brands.yaml"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
LEVEL_STYLE = {
    0: ("normal", "green"),
    1: ("watch", "yellow"),
    2: ("warning", "dark_orange"),
    3: ("critical", "bold red"),
}
BROKEN: list[bytes] = [
    b'{"id": "demo-broken-1", "text": "unterminated',  # invalid JSON
    json.dumps({"id": "demo-broken-2", "created_at": "2026-01-01T00:00:00Z"}).encode(),
]


@dataclass
class DemoOptions:
    keep_running: bool = False
    #: Wall-clock seconds per story minute while the storm plays (the recovery goes 12x faster).
    pace_s: float = 0.6
    report_dir: Path = field(default_factory=lambda: Path.cwd() / "stormvarsel-demo-report")
    #: Start Prometheus and Alertmanager when installed (off: Kafka and the worker only).
    services: bool = True


@dataclass
class Stack:
    """What the demo started, so that it can stop exactly that."""

    broker: LocalKafka
    kafka_ours: bool = False
    worker: subprocess.Popen[bytes] | None = None
    worker_log: Path | None = None
    alertmanager: LocalAlertmanager | None = None
    prometheus: LocalPrometheus | None = None
    receiver: WebhookReceiver | None = None

    def check_worker(self) -> None:
        """Raise if the worker has exited: the story would wait for it, then play to no one."""
        if self.worker is not None and self.worker.poll() is not None:
            raise StormvarselError(
                f"the worker exited with code {self.worker.returncode} while the story played; "
                f"its log: {self.worker_log}"
            )

    def stop(self, console: Console) -> None:
        """Stop it all. A Ctrl-C meanwhile (pressed again while the worker takes its seconds to
        stop) does not cut this short: that left Prometheus, Alertmanager and Kafka running."""

        def again(_signum: int, _frame: object) -> None:
            console.print("[yellow]Still stopping what the demo started; a few more seconds.[/]")

        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if in_main else None
        if in_main:
            signal.signal(signal.SIGINT, again)
        try:
            self._stop(console)
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)

    def _stop(self, console: Console) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                console.print("[yellow]the worker did not stop within 30 s; killing it[/]")
                self.worker.kill()
                self.worker.wait()
            console.print("Worker stopped.")
        for service in (self.prometheus, self.alertmanager):
            if service is not None:
                service.stop()
                console.print(f"{service.name.capitalize()} stopped.")
        if self.receiver is not None:
            self.receiver.stop()
        if self.kafka_ours:
            self.broker.stop()
            console.print("Kafka stopped.")


def run_demo(
    settings: Settings, *, keep_running: bool = False, options: DemoOptions | None = None
) -> int:
    options = options or DemoOptions(keep_running=keep_running)
    console = Console()
    stack = Stack(LocalKafka.from_settings(settings))
    with _terminations_interrupt():
        return _run(settings, options, console, stack)


@contextlib.contextmanager
def _terminations_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (``kill``, a closed terminal) stop the demo as Ctrl-C does. Their
    default ended Python at once, without the clean stop, and the Kafka broker, which runs in a
    session of its own, was left running (the next demo then reused it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _run(settings: Settings, options: DemoOptions, console: Console, stack: Stack) -> int:
    try:
        local, base_url = _start(stack, settings, options, console)
        scenario = generate(int(time.time() * 1000))
        console.print(
            f"Story: {len(scenario.all):,} posts about two fictional brands. Yesterday was calm; "
            f"at {_clock(scenario.storm_start_ms)} UTC a billing run charged Nordlys Energi's "
            "customers twice."
        )
        with _producer(local) as send:
            # Dated like the story's first post: undated, they took the broker's clock (now),
            # ahead of yesterday's posts in their partition, and the report's replay, which
            # merges partitions by time, then counted that whole partition late.
            first_ms = _event_ms(scenario.calm[0])
            for raw in BROKEN:
                send(None, raw, first_ms)
            _backfill(console, send, scenario.calm, base_url, stack.check_worker)
            _play(
                console,
                send,
                scenario,
                options.pace_s,
                base_url,
                stack.receiver,
                stack.check_worker,
            )
        _show_dead_letters(console, local, expected=len(BROKEN))
        paged = _show_page(console, local, stack.receiver, settings)
        _write_report(console, local, scenario, options.report_dir)
        _where(console, stack, options, local)
        if options.keep_running:
            console.print("Running; press Ctrl-C to stop everything.")
            while stack.worker is not None and stack.worker.poll() is None:
                time.sleep(1)
        if not paged:
            console.print(
                f"[red]Demo finished without a page; the worker's log: {stack.worker_log}[/]"
            )
            return 1
        console.print("[green]Demo finished.[/]")
        return 0
    except KeyboardInterrupt:
        console.print("\nInterrupted; stopping cleanly ...")
        return 130
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop(console)


# --- start-up ------------------------------------------------------------------------------------
def running_bootstrap(broker: LocalKafka, started_here: bool) -> str:
    """Where the local broker answers. One already running may have been started with another
    port than the settings name now (its own properties say which): the demo used the settings'
    port, and failed at its first topic with nothing there."""
    if started_here:
        return broker.bootstrap
    status = broker.status()
    if not status.reachable:
        raise StormvarselError(
            f"the local Kafka (pid {status.pid}) runs at {status.bootstrap} but does not answer; "
            "see `stormvarsel kafka status`, or stop it with `stormvarsel kafka stop`"
        )
    return status.bootstrap


def _start(
    stack: Stack, settings: Settings, options: DemoOptions, console: Console
) -> tuple[Settings, str]:
    with console.status("Starting the local Kafka ..."):
        t0 = time.monotonic()
        stack.kafka_ours = stack.broker.start(say=console.print)
    where = running_bootstrap(stack.broker, stack.kafka_ours)
    console.print(
        f"Kafka ready at {where} in {time.monotonic() - t0:.1f} s"
        if stack.kafka_ours
        else f"Kafka already running at {where}; using it"
    )
    run = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    state_dir = settings.kafka_local_data_dir.parent / "demo" / run
    brands_file = settings.brands_file or (REPO_BRANDS if REPO_BRANDS.exists() else None)
    check_demo_brands(brands_file)
    local = Settings(
        **{
            **settings.model_dump(),
            "brands_file": brands_file,
            "kafka_bootstrap_servers": where,
            "kafka_security_protocol": "PLAINTEXT",
            "topic_prefix": f"demo-{run}.",
            "app_id": f"stormvarsel-demo-{run}",
        }
    )
    ensure_topics(local)
    overrides = {
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": where,
        "STORMVARSEL_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "STORMVARSEL_TOPIC_PREFIX": local.topic_prefix,
        "STORMVARSEL_APP_ID": local.app_id,
        "STORMVARSEL_WEB_PORT": str(free_port()),
        "STORMVARSEL_DATA_DIR": str(state_dir / "worker"),
        "STORMVARSEL_LOG_FORMAT": "json",
        # Close the last buckets a few seconds after the story ends.
        "STORMVARSEL_DETECT_IDLE_CLOSE_S": "3",
    }
    if brands_file is not None:
        overrides["STORMVARSEL_BRANDS_FILE"] = str(brands_file)
    env = demo_worker_env(os.environ, overrides)
    am_binary = alertmanager_tool("alertmanager") if options.services else None
    if am_binary:
        stack.receiver = WebhookReceiver()
        stack.receiver.start()
        stack.alertmanager = LocalAlertmanager(am_binary, state_dir / "alertmanager")
        with console.status("Starting Alertmanager ..."):
            stack.alertmanager.start(alertmanager_config(stack.receiver))
        env["STORMVARSEL_ALERTMANAGER_URLS"] = stack.alertmanager.url
        env["STORMVARSEL_NOTIFY_RESEND_S"] = "5"
        console.print(
            f"Alertmanager ready at {stack.alertmanager.url} (routes from deploy/alertmanager)"
        )
    elif options.services:
        console.print(
            "[yellow]Alertmanager is not installed (Debian: prometheus-alertmanager); "
            "the page is shown as it would be sent.[/]"
        )
    log_path = stack.worker_log = state_dir / "worker.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as handle:
        stack.worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{env['STORMVARSEL_WEB_PORT']}"
    with console.status("Starting the worker (loading the sentiment model) ..."):
        _wait_healthy(base_url, stack.worker, timeout_s=120, log_path=log_path)
    console.print(f"Worker ready: {base_url}/metrics, log in {log_path}")
    prom_binary = find_binary("prometheus") if options.services else None
    if prom_binary:
        stack.prometheus = LocalPrometheus(prom_binary, state_dir / "prometheus")
        with console.status("Starting Prometheus ..."):
            stack.prometheus.start(base_url.removeprefix("http://"))
        console.print(f"Prometheus ready at {stack.prometheus.url}, scraping the worker")
    return local, base_url


#: The settings that page someone: the demo's made-up storm must never reach a real
#: Alertmanager from the shell's environment (with --no-services, or without Alertmanager
#: installed, the page is only shown).
PAGING_SETTINGS = (
    "STORMVARSEL_ALERTMANAGER_URLS",
    "STORMVARSEL_ALERTMANAGER_TOKEN",
    "STORMVARSEL_ALERTMANAGER_TOKEN_FILE",
)


def demo_worker_env(environ: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The demo worker's environment: the shell's, without any spelling of the settings the
    demo sets (names are read in any case, and a lower-case one beside the demo's upper-case
    one was "set twice": the worker refused to start) and without the paging settings (the
    demo sets its own Alertmanager's URL when it starts one); then the demo's settings."""
    dropped = {name.upper() for name in overrides} | set(PAGING_SETTINGS)
    env = {name: value for name, value in environ.items() if name.upper() not in dropped}
    env.update(overrides)
    return env


def check_demo_brands(brands_file: Path | None) -> None:
    """Refuse a brands file without the story's two brands: their mentions would match no
    brand and be dropped, and the demo would play its storm to nobody (the shell's
    STORMVARSEL_BRANDS_FILE of a real deployment, say)."""
    needed = {"nordlys-energi", "fjellbrod"}
    if brands_file is None:
        raise StormvarselError(f"the demo needs a brands file with {sorted(needed)}: none found")
    found = {brand.id for brand in load_brands(brands_file).brands}
    if not needed <= found:
        raise StormvarselError(
            f"the demo's story is about the brands {', '.join(sorted(needed))}, which "
            f"{brands_file} does not list; unset STORMVARSEL_BRANDS_FILE (the demo then uses "
            f"{REPO_BRANDS})"
        )


def _wait_healthy(
    base_url: str, worker: subprocess.Popen[bytes], timeout_s: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise StormvarselError(
                f"the worker exited with code {worker.returncode}; its log: {log_path}"
                + _last_error(log_path)
            )
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise StormvarselError(
        f"the worker did not become ready within {timeout_s:.0f} s; its log: {log_path}"
    )


def _last_error(log_path: Path) -> str:
    """The worker's one-line ``error: ...`` (a settings problem), if its log ends with one."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error: ")]
    return f" ({errors[-1]})" if errors else ""


# --- playing the story ---------------------------------------------------------------------------
Send = Callable[[bytes | None, bytes, int | None], None]


@contextlib.contextmanager
def _producer(settings: Settings) -> Iterator[Send]:
    producer = KafkaProducer(
        **client_config(settings, "stormvarsel-demo"), acks="all", linger_ms=20
    )
    topic = settings.topic(MENTIONS)

    def send(key: bytes | None, value: bytes, timestamp_ms: int | None) -> None:
        producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)

    try:
        yield send
    finally:
        producer.flush()
        producer.close()


def _event_ms(mention: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(mention["created_at"]).timestamp() * 1000)


def _send_mentions(send: Send, mentions: list[dict[str, Any]]) -> None:
    for mention in mentions:
        ms = _event_ms(mention)
        send(mention["id"].encode(), json.dumps(mention, ensure_ascii=False).encode(), ms)


def _backfill(
    console: Console,
    send: Send,
    calm: list[dict[str, Any]],
    base_url: str,
    check_worker: Callable[[], None],
) -> None:
    """Yesterday at once: the detectors learn each brand's normal day from it."""
    before = _metrics(base_url).get("stormvarsel_mentions_scored_total", 0.0)
    _send_mentions(send, calm)
    progress = Progress(
        TextColumn("Scoring yesterday's calm day"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    # Each post names one brand, so one scored record per post.
    with progress:
        task = progress.add_task("calm", total=len(calm))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            check_worker()
            done = _metrics(base_url).get("stormvarsel_mentions_scored_total", 0.0) - before
            progress.update(task, completed=min(done, len(calm)))
            if done >= len(calm):
                break
            time.sleep(0.5)


def _play(
    console: Console,
    send: Send,
    scenario: Scenario,
    pace_s: float,
    base_url: str,
    receiver: WebhookReceiver | None,
    check_worker: Callable[[], None],
) -> None:
    """The storm and the recovery, minute by minute, with the live view."""
    plan = [(group, pace_s) for group in scenario.minutes("storm")]
    plan += [(group, pace_s / 12) for group in scenario.minutes("recovery")]
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        last_draw = 0.0
        for group, pause in plan:
            check_worker()
            _send_mentions(send, group)
            event_ms = int(datetime.fromisoformat(group[-1]["created_at"]).timestamp() * 1000)
            if time.monotonic() - last_draw >= 0.5:
                live.update(_view(base_url, receiver, event_ms))
                last_draw = time.monotonic()
            time.sleep(pause)
        # Let the last buckets close (the worker's idle timer) and the pages arrive.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            check_worker()
            live.update(_view(base_url, receiver, scenario.end_ms))
            if receiver is None or any(a["status"] == "resolved" for a in receiver.alerts()):
                break
            time.sleep(1)
        live.update(_view(base_url, receiver, scenario.end_ms))
    console.print()


def _metrics(base_url: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            brand = sample.labels.get("brand")
            key = (
                f"{sample.name}|{brand}"
                if brand and sample.name.startswith("stormvarsel_brand_")
                else sample.name
            )
            if key in values and not sample.name.startswith("stormvarsel_brand_"):
                values[key] += sample.value
            else:
                values[key] = sample.value
    return values


def _view(base_url: str, receiver: WebhookReceiver | None, event_ms: int) -> Group:
    m = _metrics(base_url)
    table = Table(title=f"Brands, last closed bucket (story time {_clock(event_ms)} UTC)")
    for column in ("brand", "mentions", "expected", "negative", "usual", "storm level"):
        table.add_column(column, justify="left" if column in ("brand", "storm level") else "right")
    brands = sorted(
        {k.split("|", 1)[1] for k in m if k.startswith("stormvarsel_brand_storm_level|")}
    )
    for brand in brands:

        def g(name: str, brand: str = brand) -> float:
            return m.get(f"stormvarsel_brand_{name}|{brand}", float("nan"))

        share = g("negative_ratio")
        level_name, style = LEVEL_STYLE.get(int(g("storm_level")), ("?", "white"))
        table.add_row(
            brand,
            f"{g('bucket_mentions'):.0f}",
            f"{g('bucket_expected_mentions'):.1f}",
            "-" if share != share else f"{share:.0%}",
            f"{g('negative_baseline_ratio'):.0%}",
            Text(level_name, style=style),
        )
    pages = receiver.alerts() if receiver is not None else []
    line = Text(
        f"read {m.get('stormvarsel_mentions_total', 0):,.0f} · scored "
        f"{m.get('stormvarsel_mentions_scored_total', 0):,.0f} · dead letters "
        f"{m.get('stormvarsel_mentions_rejected_total', 0):,.0f} · alert records "
        f"{m.get('stormvarsel_episode_events_total', 0):,.0f} · notifications received {len(pages)}"
    )
    return Group(table, line)


# --- what the on-call person sees ----------------------------------------------------------------
def _read_topic(settings: Settings, name: str) -> list[dict[str, Any]]:
    """Every JSON record of one of this run's topics (they are small), without a consumer group."""
    consumer = KafkaConsumer(
        settings.topic(name),
        **client_config(settings, "stormvarsel-demo-reader"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        return [json.loads(message.value) for message in consumer]
    finally:
        consumer.close()


def _show_dead_letters(console: Console, settings: Settings, expected: int) -> None:
    records = _read_topic(settings, MENTIONS_DLQ)
    console.print(f"Dead-letter topic '{settings.topic(MENTIONS_DLQ)}': {len(records)} records")
    for record in records[-expected:]:
        original = base64.b64decode(record["original_b64"]).decode("utf-8", "replace")
        console.print(
            f"  [red]{record['reason']}[/]: {record['message']}; original: {original[:60]!r}"
        )


def _show_page(
    console: Console, settings: Settings, receiver: WebhookReceiver | None, base: Settings
) -> bool:
    """Show the storm's page; False when there was none (the demo has failed its story)."""
    if receiver is not None:
        alerts = [a for a in receiver.alerts() if a["labels"].get("alertname") == "BrandStorm"]
        seen: list[str] = []
        for alert in alerts:  # in the order they arrived, each change once
            labels = alert["labels"]
            line = f"{alert['status']} {labels['brand']} {labels['severity']}"
            if line not in seen:
                seen.append(line)
                console.print(f"  notification received: {line}")
        firing = [a for a in alerts if a["status"] == "firing"]
        order = {"critical": 3, "warning": 2, "watch": 1}
        chosen = max(
            firing or alerts, key=lambda a: order.get(a["labels"]["severity"], 0), default=None
        )
        source = "as Alertmanager delivered it to the on-call receiver"
    else:
        chosen = _page_without_alertmanager(settings, base)
        source = "as it would be sent to Alertmanager (not installed here)"
    if chosen is None:
        console.print("[red]No storm page was raised: the story's storm was not detected.[/]")
        return False
    labels, notes = chosen["labels"], chosen["annotations"]
    body = Text()
    body.append(notes.get("summary", "") + "\n\n", style="bold")
    body.append(notes.get("description", "") + "\n\n")
    body.append("Holding statements (drafts, approve before posting)\n", style="bold")
    body.append(notes.get("statements", "") + "\n\n")
    body.append("Drivers\n", style="bold")
    body.append(notes.get("drivers", "") + "\n\n")
    body.append(f"Runbook:   {notes.get('runbook_url', '')}\n")
    body.append(f"Dashboard: {notes.get('dashboard_url', '')}")
    title = f"PAGE: {labels.get('alertname')} · {labels.get('brand')} · {labels.get('severity')}"
    console.print(Panel(body, title=title, subtitle=source, border_style="red"))
    return True


def _page_without_alertmanager(settings: Settings, base: Settings) -> dict[str, Any] | None:
    """The latest storm alert record, turned into the alert the notifier would post."""
    records = _read_topic(settings, ALERTS)
    storms = [r for r in records if r.get("kind") == "storm"]
    if not storms:
        return None
    order = {"critical": 3, "warning": 2, "watch": 1}
    worst = max(storms, key=lambda r: order.get(r["severity"], 0))
    links = Links(runbook_url=base.runbook_url, grafana_url=base.grafana_url)
    firing = dict(worst, status="firing")
    return am_alerts(firing, [worst["severity"]], links, time.time() * 1000, 900_000)[0]


def _write_report(console: Console, settings: Settings, scenario: Scenario, out: Path) -> None:
    from streams.replay.command import CommandOptions, run_command

    start = datetime.fromtimestamp((scenario.storm_start_ms - 3 * 3_600_000) / 1000, UTC)
    start = start.replace(second=0, microsecond=0)
    end = datetime.fromtimestamp((scenario.end_ms + 60_000) / 1000, UTC)
    # The warm-up is the story's own history (yesterday), not replay's default week: asked for
    # a week the topic does not hold, the report noted that the detectors may have alerted less
    # than live did.
    history_ms = int(start.timestamp() * 1000) - _event_ms(scenario.calm[0])
    options = CommandOptions(
        start=start.isoformat(timespec="minutes"),
        end=end.isoformat(timespec="minutes"),
        out=out,
        warmup=f"{max(0, -(-history_ms // 60_000))}m",
    )
    console.print(
        "Writing the post-mortem. To write it again later (with the broker running: "
        "`stormvarsel kafka start`):"
    )
    console.print(f"  {replay_command(settings, options)}", soft_wrap=True, highlight=False)
    for line in run_command(settings, options):
        console.print(f"  {line}")


def replay_command(settings: Settings, options: CommandOptions) -> str:
    """The shell command that replays this run's topics as the demo does. The bare ``replay
    --from --to --warmup`` it printed before read the default topics (no ``demo-<run>.``
    prefix) and found nothing."""
    env = {
        "STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STORMVARSEL_TOPIC_PREFIX": settings.topic_prefix,
    }
    if settings.brands_file is not None:
        env["STORMVARSEL_BRANDS_FILE"] = str(settings.brands_file.resolve())
    args = ["stormvarsel", "replay", "--from", options.start, "--to", options.end]
    args += ["--warmup", options.warmup]
    if options.out is not None:
        args += ["--out", str(options.out.resolve())]
    words = [f"{name}={shlex.quote(value)}" for name, value in env.items()]
    return " ".join(words + [shlex.quote(arg) for arg in args])


def _where(console: Console, stack: Stack, options: DemoOptions, settings: Settings) -> None:
    """The box of where to look, then how to delete this run's topics later (``settings``: the
    run's own, with its ``demo-<run>.`` topic prefix and app id)."""
    lines = [f"Post-mortem report: {options.report_dir / 'report.html'}"]
    while_running = "" if options.keep_running else " (while it runs: --keep-running)"
    if stack.prometheus is not None:
        lines.append(
            f"Prometheus: {stack.prometheus.url}/graph?g0.expr=stormvarsel_brand_storm_level"
            "&g0.range_input=15m" + while_running
        )
    if stack.alertmanager is not None:
        lines.append(f"Alertmanager: {stack.alertmanager.url}" + while_running)
    lines.append(
        f"Grafana dashboards: {DASHBOARDS}/ (provisioned by `docker compose up`, or import them)"
    )
    console.print(Panel("\n".join(lines), title="Where to look"))
    console.print(
        "This run's topics stay on the broker. To delete them later (with the broker running: "
        "`stormvarsel kafka start`), its pipeline topics, then its worker's state topics:"
    )
    for command in cleanup_commands(settings):
        console.print(f"  {command}", soft_wrap=True, highlight=False)


def cleanup_commands(settings: Settings) -> list[str]:
    """``stormvarsel topics delete`` for this run's pipeline topics (``demo-<run>.``) and its
    worker's state topics (``<app id>-``), each on one line."""
    env = f"STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS={shlex.quote(settings.kafka_bootstrap_servers)}"
    return [
        f"{env} stormvarsel topics delete --prefix {shlex.quote(prefix)}"
        for prefix in (settings.topic_prefix, f"{settings.app_id}-")
    ]


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")
