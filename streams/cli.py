"""The ``stormvarsel`` command line."""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from streams import __version__
from streams.cli_support import (
    RETRY_SECONDS,
    TIMEOUT_SECONDS,
    FiniteFloatRange,
    NonEmptyPath,
    WholeNumberRange,
    confirm_or_stop,
    exit_interrupted,
    interruptible,
    leaves_on_interrupt,
)
from streams.errors import ConfigError, StormvarselError
from streams.settings import (
    ENV_PREFIX,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_TOPIC_PARTITIONS,
    Settings,
    env_origin,
    file_problems,
    idle_settings,
    load_settings,
    unknown_variables,
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def friendly_errors(func: F) -> F:
    """Turn our own errors into one red line and a non-zero exit, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            _fail(str(exc), code=2)
        except StormvarselError as exc:
            _fail(str(exc))

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    try:
        settings = load_settings()
    except StormvarselError as exc:
        _fail(str(exc), code=2)
        raise  # unreachable; keeps type checkers calm
    for name, close in unknown_variables(os.environ):
        guess = f"; did you mean {close}?" if close else " (see `stormvarsel config show`)"
        click.secho(f"warning: {name} is not a setting, so it has no effect{guess}", err=True)
    protocol = settings.kafka_security_protocol
    for name, used_by in idle_settings(settings):
        click.secho(
            f"warning: {ENV_PREFIX}{name.upper()} has no effect while "
            f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL is {protocol} (it is used with {used_by})",
            err=True,
        )
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stormvarsel")
def main() -> None:
    """Stormvarsel: notices early when a shitstorm about a brand begins, and pages on-call comms.

    Settings come from STORMVARSEL_* environment variables; `stormvarsel config show` prints them.
    """
    from streams.log_setup import configure_logging

    # The raw environment, not Settings: a bad value must still get its one-line error later.
    level = _raw_setting("log_level", "INFO").strip().upper()
    configure_logging(level if level in LOG_LEVELS else "INFO", _log_format())


def _raw_setting(name: str, default: str) -> str:
    """The variable of the setting ``name`` as given, its name in any case as the settings read
    it (``stormvarsel_log_level`` too), or ``default`` when it is not set."""
    given_as = env_origin(name, os.environ)
    return default if given_as is None else os.environ[given_as]


def _log_format() -> str:
    fmt = _raw_setting("log_format", "auto").strip().lower()
    return fmt if fmt in LOG_FORMATS else "auto"


# --- config ---
@main.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of aligned text.")
@friendly_errors
def config_show(as_json: bool) -> None:
    """Print the effective settings (secrets masked), the brands and the detector keys changed.

    A pre-flight check: every file setting in effect (TLS files, secrets' ..._FILE) must name a
    readable regular file (a PEM block for the TLS ones), and no secret in effect may be set
    empty. Each that fails is one error line on stderr after the settings. Exit 0: all usable;
    1: a file setting or secret is not; 2: a bad value, brands file or detector configuration."""
    settings = _settings()
    try:
        _show(settings, as_json)
    finally:
        problems = file_problems(settings)
        for problem in problems:
            click.secho(f"error: {problem}", fg="red", err=True)
    if problems:
        sys.exit(1)


def _show(settings: Settings, as_json: bool) -> None:
    values = settings.masked()
    brands = settings.brands
    changed = _detector_changes(settings)
    if as_json:
        payload = {
            "settings": values,
            "brands": [b.model_dump(mode="json") for b in brands.brands],
            "detector": {
                "file": None if settings.detector_config is None else str(settings.detector_config),
                "changed": changed,
            },
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    fields = type(settings).model_fields
    width = max(len(ENV_PREFIX + name) for name in values)
    for name, value in values.items():
        env_name = ENV_PREFIX + name.upper()
        given_as = env_origin(name, os.environ)
        origin = "default" if given_as is None else "env"
        if given_as not in {None, env_name}:
            origin = f"env, as {given_as}"
        shown = "" if value is None else value
        click.echo(f"{env_name:<{width}}  {shown!s:<40}  ({origin}) {fields[name].description}")
    click.echo("")
    if not brands.brands:
        if settings.brands_file is None:
            click.echo("brands: none configured (set STORMVARSEL_BRANDS_FILE)")
        else:
            click.echo(f"brands: none in {settings.brands_file}")
    for brand in brands.brands:
        click.echo(
            f"brand {brand.id}: {brand.name!r}, languages {','.join(brand.languages)}, "
            f"tone {brand.tone}, on-call {brand.oncall.team}, "
            f"{len(brand.aliases)} aliases, {len(brand.handles)} handles, "
            f"{len(brand.hashtags)} hashtags"
        )
    click.echo("")
    source = settings.detector_config or "built-in defaults"
    if not changed:
        click.echo(f"detector: {source}, every key at its default (docs/detectors.md)")
    else:
        click.echo(f"detector: {source}, keys that differ from the defaults:")
        for key, value in changed.items():
            click.echo(f"  {key}: {json.dumps(value, ensure_ascii=False)}")


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


def _detector_changes(settings: Settings) -> dict[str, Any]:
    """The detector configuration's keys (dotted) whose values differ from the defaults, the
    brands file's time zones included: what the worker would run with, checked the same way."""
    from detectors.config import DetectorConfig
    from streams.app import load_detector_config

    def flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:  # as the YAML file writes them: tuples as lists, 9 rather than 9.0
                out[f"{prefix}{key}"] = json.loads(json.dumps(value), parse_float=_number)
        return out

    ours = flat(load_detector_config(settings).to_dict())
    defaults = flat(DetectorConfig().to_dict())
    return {key: value for key, value in ours.items() if value != defaults.get(key)}


# --- kafka ---
@main.group()
def kafka() -> None:
    """Run a local single-node Apache Kafka (KRaft) on 127.0.0.1 for development and demos."""


_data_dir_option = click.option(
    "--data-dir",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    default=None,
    help="Broker data directory [default: STORMVARSEL_KAFKA_LOCAL_DATA_DIR or the user state dir].",
)


def _local_kafka(data_dir: Path | None, settings: Settings | None = None) -> Any:
    from streams.kafka_local import LocalKafka

    return LocalKafka.from_settings(settings or _settings(), data_dir=data_dir)


@kafka.command("fetch")
@interruptible("nothing installed: a download in progress is redone by the next fetch or start")
@friendly_errors
def kafka_fetch() -> None:
    """Fetch the broker's jars from Maven Central into the cache (start does this when needed)."""
    broker = _local_kafka(None)
    libs = broker.ensure_installed(say=lambda m: click.echo(m, err=True))
    click.echo(f"Apache Kafka {broker.version} is installed in {libs}")


@kafka.command("start")
@_data_dir_option
@click.option(
    "--timeout",
    type=TIMEOUT_SECONDS,
    metavar="SECONDS",
    default=60.0,
    show_default=True,
    help="Seconds to wait for readiness.",
)
# A broker it had launched is stopped again by start() itself, which says so.
@interruptible("this start left no broker running")
@friendly_errors
def kafka_start(data_dir: Path | None, timeout: float) -> None:
    """Start the broker in the background and wait until it serves clients.

    Exit 0: ready, or running already; 1: it could not start; 130: interrupted (a broker this
    start launched is stopped again)."""
    import time

    settings = _settings()  # once: its warnings about unknown variables too
    broker = _local_kafka(data_dir, settings)
    started_at = time.monotonic()
    # On Ctrl-C, start() itself says whether it had launched a broker and stops it.
    if not broker.start(timeout_s=timeout, say=lambda m: click.echo(m, err=True)):
        status = broker.status()
        click.echo(f"Kafka is already running (pid {status.pid}) at {status.bootstrap}.")
        _warn_if_clients_look_elsewhere(settings, status.bootstrap)
        return
    elapsed = time.monotonic() - started_at
    click.echo(
        f"Kafka {broker.version} is ready at {broker.bootstrap} after {elapsed:.1f} s "
        f"(data: {broker.data_dir}, log: {broker.log_file})."
    )
    _warn_if_clients_look_elsewhere(settings, broker.bootstrap)


def _warn_if_clients_look_elsewhere(settings: Settings, bootstrap: str) -> None:
    """The local broker listens on STORMVARSEL_KAFKA_LOCAL_PORT; the other commands connect to
    STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS. Say so when that does not name this broker."""
    servers = settings.kafka_bootstrap_servers
    port = bootstrap.rsplit(":", 1)[1]
    # Not [::1]: the broker listens on 127.0.0.1 only, so a client given [::1] is refused.
    local = {f"{host}:{port}" for host in ("127.0.0.1", "localhost")}
    named = {server.strip() for server in servers.split(",")}
    if not local & named:
        ipv6 = (
            " ([::1] is IPv6 loopback; this broker listens on 127.0.0.1 only)"
            if f"[::1]:{port}" in named
            else ""
        )
        click.echo(
            f"warning: STORMVARSEL_KAFKA_BOOTSTRAP_SERVERS is {servers}, which does not name this "
            f"broker{ipv6}: the worker and the other commands will not reach it. Set it to "
            f"{bootstrap}, or STORMVARSEL_KAFKA_LOCAL_PORT to the port it names.",
            err=True,
        )


@kafka.command("stop")
@_data_dir_option
@interruptible(
    "the broker may still be stopping (it was sent SIGTERM); `stormvarsel kafka status` tells"
)
@friendly_errors
def kafka_stop(data_dir: Path | None) -> None:
    """Stop the broker and wait until its process has exited."""
    broker = _local_kafka(data_dir)
    if broker.stop(say=lambda m: click.echo(m, err=True)):
        click.echo("Kafka stopped.")
    else:
        click.echo("Kafka is not running.")


@kafka.command("status")
@_data_dir_option
@friendly_errors
def kafka_status(data_dir: Path | None) -> None:
    """Say whether the broker runs; exit 0 when it runs and answers, 3 otherwise."""
    status = _local_kafka(data_dir).status()
    if not status.running:
        click.echo(f"Kafka is not running (data: {status.data_dir}).")
        sys.exit(3)
    health = "answering" if status.reachable else "NOT answering"
    uptime = f", up {status.uptime_s:.0f} s" if status.uptime_s is not None else ""
    click.echo(
        f"Kafka {status.version} is running (pid {status.pid}{uptime}) at {status.bootstrap}, "
        f"{health} (data: {status.data_dir})."
    )
    sys.exit(0 if status.reachable else 3)


# --- topics ---
@main.group()
def topics() -> None:
    """Manage the pipeline's Kafka topics."""


_kafka_timeout_option = click.option(
    "--timeout",
    type=TIMEOUT_SECONDS,
    metavar="SECONDS",
    default=30.0,
    show_default=True,
    help="Seconds to wait for Kafka.",
)


@topics.command("create")
@_kafka_timeout_option
@interruptible(
    "topics created before it stay (logged as topic.created); run it again to create the rest"
)
@friendly_errors
def topics_create(timeout: float) -> None:
    """Create missing topics with the configured partition and replication counts.

    Exit 0: every pipeline topic exists; 1: Kafka unreachable or refusing; 130: interrupted
    (the topics created before it stay)."""
    from streams.kafka_clients import kafka_logs_quiet
    from streams.topics import PIPELINE_TOPICS, ensure_topics

    settings = _settings()
    with kafka_logs_quiet():
        states = ensure_topics(settings, timeout_s=timeout)
    for state in states:
        what = "created" if state.created else "exists"
        purpose = PIPELINE_TOPICS.get(state.name.removeprefix(settings.topic_prefix), "")
        click.echo(f"{state.name:<24} {what:<8} {state.partitions:>3} partitions  {purpose}")


_discard_baselines_option = click.option(
    "--discard-baselines",
    is_flag=True,
    help="Start every brand's detector afresh (24 h warm-up) instead of carrying it over.",
)


def _baselines(
    settings: Settings, discard: bool, timeout: float
) -> tuple[Callable[[], object], list[str]]:
    """The step that keeps (or discards) the brands' detectors before the state topics go, and
    the lines that will say what it did."""
    from streams.app import load_detector_config
    from streams.detector_seeds import discard_baselines, keep_baselines, seeds_topic

    said: list[str] = []
    topic = seeds_topic(settings.app_id)
    if discard:

        def step() -> object:
            discard_baselines(settings, timeout_s=timeout)
            said.append("Every brand starts afresh: it can page again after its warm-up (24 h).")
            return None

        return step, said
    config = load_detector_config(settings)  # a bad detector file fails before anything changes

    def keep() -> object:
        kept = keep_baselines(settings, config, timeout_s=timeout)
        brands = kept.brands
        said.append(
            f"Carried over the detectors of {brands} brand{'' if brands == 1 else 's'} ({topic}): "
            "each goes on where it was "
            "with its next mention; a brand without one warms up again (24 h)."
            if brands
            else f"No brand's detector in the state topics; the ones in {topic}, if any, stay."
        )
        if kept.alerts:
            said.append(
                f"Carried over {kept.alerts} firing storm alert{'' if kept.alerts == 1 else 's'}: "
                "the workers keep them open in Alertmanager until their episodes resolve (or "
                "their brand is silent for 24 h)."
            )
        return None

    return keep, said


def _discard_without_state_topics(
    settings: Settings, step: Callable[[], object], *, yes: bool, timeout: float
) -> None:
    """``reset-state --discard-baselines`` with no state topic to delete: the seeds topic still
    goes, so ask (unless ``yes``) and refuse while a worker runs, as with state topics."""
    from streams.detector_seeds import seeds_topic
    from streams.kafka_clients import connect_admin, kafka_logs_quiet
    from streams.topics import refuse_while_workers_run

    if not yes:
        confirm_or_stop(
            f"Delete {seeds_topic(settings.app_id)}, the detectors saved for every brand "
            "(each warms up again, 24 h)?"
        )
    with kafka_logs_quiet():
        admin = connect_admin(settings, timeout_s=timeout)
        try:
            refuse_while_workers_run(admin, settings.app_id)
        finally:
            admin.close()
        leaves_on_interrupt(
            f"the detectors kept for app id {settings.app_id!r} may be partly discarded; "
            "run it again to finish"
        )
        step()


@topics.command("reset-state")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_discard_baselines_option
@_kafka_timeout_option
@interruptible("nothing was changed")
@friendly_errors
def topics_reset_state(yes: bool, discard_baselines: bool, timeout: float) -> None:
    """Delete the worker's state topics (its tables' changelogs), e.g. after a pipeline topic
    got more partitions. Every worker of STORMVARSEL_APP_ID must be stopped. Their next start
    creates them afresh: de-duplication memory is gone; each brand's detector (baselines, storm
    state) and firing storm alerts are carried over unless --discard-baselines; committed
    offsets, so the mentions already read, stay.

    Exit 0: done; 1: refused, or not confirmed (nothing changed); 130: interrupted."""
    from streams.kafka_clients import kafka_logs_quiet
    from streams.topics import reset_state_topics, state_topics

    settings = _settings()
    with kafka_logs_quiet():
        names = state_topics(settings, timeout_s=timeout)
    step, said = _baselines(settings, discard_baselines, timeout)
    if not names:
        click.echo(f"No state topics of app id {settings.app_id!r}: nothing to delete.")
        if discard_baselines:
            _discard_without_state_topics(settings, step, yes=yes, timeout=timeout)
            click.echo("\n".join(said))
        return
    if not yes:
        click.echo("\n".join(names))
        confirm_or_stop(f"Delete these {len(names)} topics?")
    leaves_on_interrupt(
        "some state topics may be deleted already (the brands' detectors were saved first); "
        "run `stormvarsel topics reset-state` again to delete the rest"
    )
    with kafka_logs_quiet():
        deleted = reset_state_topics(settings, timeout_s=timeout, before_delete=step)
    click.echo(f"Deleted {len(deleted)} state topics of app id {settings.app_id!r}.")
    for line in said:
        click.echo(line)


@topics.command("grow")
@click.option(
    "--partitions",
    # The settings' own bound: the command ends by asking for STORMVARSEL_TOPIC_PARTITIONS=N.
    type=WholeNumberRange(min=1, max=MAX_TOPIC_PARTITIONS),
    required=True,
    help="The partition count every pipeline topic gets (Kafka can only add partitions).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force",
    is_flag=True,
    help="Grow even though scored mentions or alert records are unread (see above).",
)
@_discard_baselines_option
@_kafka_timeout_option
@interruptible("nothing was changed")
@friendly_errors
def topics_grow(
    partitions: int, yes: bool, force: bool, discard_baselines: bool, timeout: float
) -> None:
    """Give every pipeline topic more partitions (--partitions), so more workers can share the
    work, and delete the workers' state topics to match (as reset-state does; each brand's
    detector is carried over unless --discard-baselines).

    Every worker of STORMVARSEL_APP_ID must be stopped, and they must have read every record of
    the pipeline topics: scored mentions and alert records read after the growth would be
    counted on their brand's old partition, and mentions not scored yet late.

    Exit 0: grown, or nothing to grow; 1: refused, or not confirmed (nothing changed);
    130: interrupted."""
    from streams.kafka_clients import kafka_logs_quiet
    from streams.topic_growth import check_read, grow_topics, plan_growth
    from streams.topics import state_topics

    settings = _settings()
    with kafka_logs_quiet():
        plan = plan_growth(settings, partitions, timeout_s=timeout)
        states = state_topics(settings, timeout_s=timeout)
    if not plan.to_grow:
        click.echo(f"Every pipeline topic has {partitions} partitions already; nothing to grow.")
        if states:
            click.echo(
                "If a worker refuses to start because its state topics do not match, run "
                "`stormvarsel topics reset-state`."
            )
        return
    for name, count in plan.current.items():
        change = f"{count} -> {partitions}" if count < partitions else f"{count} (kept)"
        click.echo(f"{name:<24} {change}")
    if states:
        click.echo(f"state topics to delete: {', '.join(states)}")
    check_read(plan, force=force)
    step, said = _baselines(settings, discard_baselines, timeout)
    if not yes:
        confirm_or_stop("Grow these topics and delete the state topics?")
    leaves_on_interrupt(
        "some topics may have grown (Kafka cannot take partitions back) and some state topics "
        f"be deleted; run `stormvarsel topics grow --partitions {partitions}` again to grow the "
        "rest, and `stormvarsel topics reset-state` if it finds nothing to grow"
    )
    with kafka_logs_quiet():
        deleted = grow_topics(settings, plan, force=force, timeout_s=timeout, before_growth=step)
    click.echo(
        f"Grew {len(plan.to_grow)} topics to {partitions} partitions and deleted "
        f"{len(deleted)} state topics of app id {settings.app_id!r}. Set "
        f"STORMVARSEL_TOPIC_PARTITIONS={partitions} where topics are created, then start the "
        "workers."
    )
    for line in said:
        click.echo(line)


@topics.command("delete")
@click.option(
    "--prefix",
    required=True,
    metavar="PREFIX",
    help="Delete the topics whose names begin with this, e.g. a replay's --publish-prefix or "
    "a demo run's 'demo-<run>.'. Refused when it would match a live pipeline topic or the "
    "worker's own topics.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only list the topics it would delete.")
@_kafka_timeout_option
@interruptible("nothing was changed")
@friendly_errors
def topics_delete(prefix: str, yes: bool, dry_run: bool, timeout: float) -> None:
    """Delete the topics whose names begin with --prefix (and their records), e.g. the results
    of an earlier `stormvarsel replay --publish-prefix P`, or a finished demo's topics. Lists them
    with their record counts and asks first. Never deletes the live pipeline topics (mentions,
    mentions.dlq, mentions.valid, mentions.scored, alerts, with STORMVARSEL_TOPIC_PREFIX and
    without), the state and internal topics of STORMVARSEL_APP_ID, or Kafka's own.

    Exit 0: deleted, nothing matched, or --dry-run; 1: refused, Kafka unreachable, or not
    confirmed (nothing changed); 130: interrupted."""
    from streams.kafka_clients import kafka_logs_quiet
    from streams.topics import delete_prefixed, prefixed_topics

    settings = _settings()
    with kafka_logs_quiet():
        found = prefixed_topics(settings, prefix, timeout_s=timeout)
    if not found:
        click.echo(f"No topic begins with {prefix!r}: nothing to delete.")
        return
    for name, count in found.items():
        click.echo(f"{name:<40} {count:>12,} record{'' if count == 1 else 's'}")
    if dry_run:
        click.echo(
            f"Dry run: {len(found)} topic{'' if len(found) == 1 else 's'} listed, none deleted."
        )
        return
    if not yes:
        confirm_or_stop(f"Delete these {len(found)} topics and their records?")
    leaves_on_interrupt(
        f"some topics beginning with {prefix!r} may be deleted already; run "
        f"`stormvarsel topics delete --prefix {shlex.quote(prefix)}` again to delete the rest"
    )
    with kafka_logs_quiet():
        deleted = delete_prefixed(settings, prefix, list(found), timeout_s=timeout)
    for name in deleted:
        click.echo(f"deleted {name}")
    click.echo(
        f"Deleted {len(deleted)} topic{'' if len(deleted) == 1 else 's'} beginning with {prefix!r}."
    )


# --- ingest ---
def _ingest_encoding(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """``ingest --encoding``: a codec Python knows, checked before anything is read."""
    from streams.ingest.options import parse_encoding

    try:
        return parse_encoding(value)
    except ValueError as exc:  # OptionError
        raise click.BadParameter(getattr(exc, "message", str(exc))) from None


@main.command()
@click.argument("source", metavar="FILE|-")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "csv"]),
    default="auto",
    show_default=True,
    help="Input format; auto: .jsonl/.ndjson/.json or .csv by extension, JSON Lines on stdin. "
    "jsonl input that starts with '[' is read as one JSON array of mentions, and input whose "
    "first JSON object spans several lines as pretty-printed objects, one after another.",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Take a mention field from a column/key, e.g. id=tweet_id or author.handle=user.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Give a field the same value in every record, e.g. platform=x.",
)
@click.option(
    "--time-format",
    metavar="STRPTIME",
    help='Parse created_at with this strptime format, e.g. "%m/%d/%Y %H:%M".',
)
@click.option(
    "--timezone",
    metavar="NAME",
    help="IANA zone for times without an offset [default: UTC with --time-format]. A local time "
    "the clocks skip (spring forward) is rejected; one they show twice (fall back) is read in "
    "file order: the first occurrence, or the second when the record before it was already "
    "later than the first (the file is taken to be oldest first).",
)
@click.option(
    "--topic",
    metavar="NAME",
    help="Topic to send to [default: STORMVARSEL_TOPIC_PREFIX + mentions].",
)
@click.option(
    "--rate", type=FiniteFloatRange(min=0, min_open=True), metavar="N", help="Send N records/s."
)
@click.option(
    "--speedup",
    type=FiniteFloatRange(min=0, min_open=True),
    metavar="X",
    help="Replay the records' original spacing X times faster.",
)
@click.option("--sort", is_flag=True, help="Sort the whole input by event time (in memory) first.")
@click.option(
    "--key",
    type=click.Choice(["id", "brand"]),
    help="Kafka key of each record. id spreads a brand's mentions over the partitions (live "
    "traffic: a storm is scored by every worker); brand keeps each brand's mentions in the "
    "order sent, through every stage (a backfill: without it a multi-partition topic gets "
    "them back out of time order, and most are counted late). A mention without a brand is "
    "keyed by id. [default: brand with --sort, else id]",
)
@click.option(
    "--limit", type=WholeNumberRange(min=1), metavar="N", help="Stop after the first N records."
)
@click.option(
    "--rejects",
    type=NonEmptyPath(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write every record not sent to FILE as JSON lines (line, reason, message, raw).",
)
@click.option(
    "--encoding",
    metavar="CODEC",
    default="utf-8",
    show_default=True,
    callback=_ingest_encoding,
    help="The input's encoding when no byte-order mark names one: any Python codec name, e.g. "
    "cp1252 or latin-1 for CSV from Excel in Norway, Sweden or Denmark. With utf-8, bytes that "
    "are not UTF-8 stop the run before anything is sent (unless --allow-rejects).",
)
@click.option(
    "--allow-rejects",
    is_flag=True,
    help="Exit 0 even when records were rejected; lines that are not UTF-8 are then rejected "
    "instead of stopping the run.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--wait-for-kafka",
    type=RETRY_SECONDS,
    metavar="SECONDS",
    default=10.0,
    show_default=True,
    help="Seconds to keep trying to reach Kafka.",
)
@friendly_errors
def ingest(
    source: str,
    fmt: str,
    maps: tuple[str, ...],
    sets: tuple[str, ...],
    time_format: str | None,
    timezone: str | None,
    topic: str | None,
    rate: float | None,
    speedup: float | None,
    sort: bool,
    key: str | None,
    limit: int | None,
    rejects: Path | None,
    encoding: str,
    allow_rejects: bool,
    quiet: bool,
    wait_for_kafka: float,
) -> None:
    """Send mentions from a JSON Lines (or JSON array) or CSV FILE (- for stdin) to the mentions
    topic.

    Each record is checked with the worker's validator first; records it would refuse are not
    sent but listed by reason and line. Records are keyed by mention id (by brand with --sort,
    see --key), and their Kafka timestamp is the mention's event time. Exit 0: all sent; 1: some
    rejected (unless --allow-rejects) or not sent, or Kafka unreachable; 2: usage error (a bad
    option or setting; nothing sent); 130: interrupted.
    """
    from rich.console import Console

    from streams.ingest import (
        IngestOptions,
        OptionError,
        build_transform,
        detect_format,
        run_ingest,
        summary_lines,
    )
    from streams.ingest.options import KeyBy

    if rate is not None and speedup is not None:
        raise click.UsageError("--rate and --speedup cannot be used together; choose one.")
    if not source.strip():
        # Path("") is the current directory: it was refused as "  is a directory".
        raise click.BadParameter(
            "is empty; give a file, or - for standard input", param_hint="FILE"
        )
    if topic is not None and not topic.strip():
        # An empty --topic (an unset shell variable) sent to the live mentions topic.
        raise click.BadParameter(
            "is empty; leave --topic out to send to STORMVARSEL_TOPIC_PREFIX + mentions",
            param_hint="'--topic'",
        )
    path = None if source == "-" else Path(source)
    if path is not None and path.is_dir():
        raise click.BadParameter(f"{source} is a directory; give a file", param_hint="FILE")
    try:
        options = IngestOptions(
            source=path,
            format=detect_format(path, fmt),
            transform=build_transform(maps, sets, time_format, timezone),
            topic=topic,
            rate=rate,
            speedup=speedup,
            sort=sort,
            key=cast(KeyBy | None, key),
            limit=limit,
            rejects=rejects,
            wait_for_kafka_s=wait_for_kafka,
            encoding=encoding,
            allow_rejects=allow_rejects,
        )
        settings = _settings()
        console = Console(stderr=True)
        show_progress = not quiet and console.is_terminal
        report = run_ingest(
            settings,
            options,
            stdin=click.get_binary_stream("stdin"),
            console=console if show_progress else None,
        )
    except OptionError as exc:
        raise click.BadParameter(exc.message, param_hint=f"'{exc.option}'") from None
    except KeyboardInterrupt:
        exit_interrupted("nothing was sent")
    for line in summary_lines(report, allow_rejects=allow_rejects):
        click.echo(line)
    sys.exit(report.exit_code(allow_rejects=allow_rejects))


# --- worker ---
@main.command()
@click.option(
    "--wait-for-kafka",
    type=RETRY_SECONDS,
    metavar="SECONDS",
    default=60.0,
    show_default=True,
    help="Seconds to keep trying to reach Kafka at start-up.",
)
@interruptible(
    "the worker stopped while starting, before it read any mention "
    "(pipeline topics it had created stay)"
)
@friendly_errors
def worker(wait_for_kafka: float) -> None:
    """Run the stream-processing worker until SIGTERM or Ctrl-C (SIGINT) stops it.

    Both stop it the same clean way: the stages finish, the offsets of what they processed are
    committed and the producer is flushed, so the next start goes on from there. Exit 0: stopped
    by SIGTERM; 1: it could not start or run (Kafka unreachable, ...); 2: a bad setting or
    configuration; 130: stopped by Ctrl-C.
    """
    import signal

    from streams.worker import run_worker

    if run_worker(_settings(), wait_for_kafka_s=wait_for_kafka) == signal.SIGINT:
        exit_interrupted(
            "the worker shut down cleanly, as on SIGTERM: offsets committed, producer flushed"
        )


# --- replay ---
@main.command()
@click.option(
    "--from",
    "start",
    required=True,
    metavar="TIME",
    help="Start of the range (record time), ISO 8601: 2015-02-16 or 2015-02-22T12:00[+01:00].",
)
@click.option(
    "--to", "end", required=True, metavar="TIME", help="End of the range (excluded), ISO 8601."
)
@click.option(
    "--brand",
    "brands",
    multiple=True,
    metavar="BRAND",
    help="Only this brand (id, name or alias; repeatable) [default: every brand].",
)
@click.option(
    "--topic",
    metavar="NAME",
    help="Topic to replay [default: STORMVARSEL_TOPIC_PREFIX + mentions]; a *mentions.scored "
    "topic replays detection on the live scores.",
)
@click.option(
    "--input",
    "stage",
    type=click.Choice(["auto", "mentions", "valid", "scored"]),
    default="auto",
    show_default=True,
    help="What the topic holds (auto: from its name).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="A second detector configuration (YAML) to run beside the live one and compare.",
)
@click.option(
    "--publish-prefix",
    metavar="P",
    help="Also write alert records and bucket summaries to P+alerts and P+buckets "
    "(P+candidate.* for --config); never to live topics.",
)
@click.option(
    "--out",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Report directory [default: ./replay-<from>-<to>].",
)
@click.option(
    "--warmup",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="History read before --from to teach the detectors, not reported: 12h, 7d, 2w "
    "(a unit is required), or 0 for none.",
)
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    metavar="NAME",
    help="IANA zone for times without an offset and for the report.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@friendly_errors
def replay(
    start: str,
    end: str,
    brands: tuple[str, ...],
    topic: str | None,
    stage: str,
    config_file: Path | None,
    publish_prefix: str | None,
    out: Path | None,
    warmup: str,
    timezone: str,
    quiet: bool,
) -> None:
    """Replay a time range of the Kafka history through the pipeline and write a post-mortem.

    Reads the range by record timestamp, re-runs validation, scoring and detection with the live
    worker's code (nothing live is touched: no pages, no writes to live topics, no committed
    offsets) and writes an HTML report, a Markdown summary and CSV files to --out. Exit 0: done;
    1: no data in the range, Kafka unreachable, or the report could not be written; 2: a bad
    option or configuration (--out unusable, or no record readable as the --input stage);
    130: interrupted.
    """
    from streams.replay.command import CommandOptions, OptionError, run_command

    # An empty --topic (an unset shell variable) replayed the default topic.
    if topic is not None and not topic.strip():
        raise click.BadParameter(
            "is empty; leave --topic out to replay STORMVARSEL_TOPIC_PREFIX + mentions",
            param_hint="'--topic'",
        )
    options = CommandOptions(
        start=start,
        end=end,
        brands=brands,
        topic=topic,
        stage=stage,
        config_file=config_file,
        publish_prefix=publish_prefix,
        out=out,
        warmup=warmup,
        timezone=timezone,
        quiet=quiet,
    )
    try:
        lines = run_command(_settings(), options)
    except OptionError as exc:
        raise click.BadParameter(exc.message, param_hint=f"'{exc.option}'") from None
    except KeyboardInterrupt:
        if publish_prefix is None:
            exit_interrupted("no report written")
        # Results are published as they come: the topics now hold part of the range.
        exit_interrupted(
            f"no report written; the topics {publish_prefix}* hold a partial result: delete "
            f"them (`stormvarsel topics delete --prefix {shlex.quote(publish_prefix)}`), or "
            "publish the next replay under another --publish-prefix"
        )
    for line in lines:
        click.echo(line)


# --- demo ---
@main.command()
@click.option("--keep-running", is_flag=True, help="Keep everything up at the end, until Ctrl-C.")
@click.option(
    "--pace",
    type=FiniteFloatRange(0, 10),
    default=0.6,
    show_default=True,
    help="Seconds per story minute while the storm plays (the recovery plays 12x faster).",
)
@click.option(
    "--report-dir",
    type=NonEmptyPath(file_okay=False, path_type=Path),
    default=Path("stormvarsel-demo-report"),
    show_default=True,
    help="Where the post-mortem report goes.",
)
@click.option(
    "--no-services",
    is_flag=True,
    help="Do not start Prometheus and Alertmanager even when installed.",
)
@friendly_errors
def demo(keep_running: bool, pace: float, report_dir: Path, no_services: bool) -> None:
    """A brand storm end to end: local Kafka, a worker, Prometheus and Alertmanager (when
    installed); a calm day, a storm in Norwegian, Swedish and English, the recovery; the page
    and the post-mortem report. Takes about 4 minutes on two cores; stops everything at the end
    or on Ctrl-C."""
    from streams.demo import DemoOptions, run_demo
    from streams.log_setup import configure_logging

    if env_origin("log_level", os.environ) is None:  # the story on screen, not every log line
        configure_logging("WARNING", _log_format())
    check_report_dir(report_dir)  # before the 4 minutes of story, not after
    options = DemoOptions(
        keep_running=keep_running, pace_s=pace, report_dir=report_dir, services=not no_services
    )
    sys.exit(run_demo(_settings(), options=options))


def check_report_dir(report_dir: Path) -> None:
    """Refuse a ``--report-dir`` the report cannot be written in: a file, or a directory
    (or its nearest existing parent) that is not writable."""
    existing = report_dir.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise click.BadParameter(
            f"cannot write the report in {report_dir} ({existing} is not a writable directory)",
            param_hint="--report-dir",
        )


# --- models ---
@main.group()
def models() -> None:
    """Prepare the sentiment models (the offline default needs no model hub)."""


@models.command("install")
@interruptible(
    "the steps finished before it stay in the cache; the next `stormvarsel models install` "
    "redoes the interrupted one (its files are built beside, as .partial, and renamed at the end)"
)
@friendly_errors
def models_install() -> None:
    """Build the offline e5 encoder and its ONNX runtime files in the cache (once; ~1 minute)."""
    from streams.sentiment.factory import install_e5

    model_dir = install_e5(_settings(), say=lambda m: click.echo(m, err=True))
    click.echo(f"The offline sentiment model is ready in {model_dir}")


def _register_subcommands() -> None:
    from streams.eval_cli import eval_group
    from streams.sentiment_cli import sentiment_group
    from streams.sentiment_train_cli import train_command

    sentiment_group.add_command(train_command)
    main.add_command(sentiment_group)
    main.add_command(eval_group)
    # Ctrl-C in these: what each leaves, from what its module writes and when.
    leaves = {
        ("eval", "nab"): "nothing printed; --results-dir, if given, holds results only if every "
        "data file had been scored",
        ("eval", "airline"): "nothing printed or written",
        ("sentiment", "eval"): "no report; a --predictions file is written only at the end",
        ("sentiment", "train"): "no head written; encoder files built before it stay in the cache",
    }
    for (group_name, name), state in leaves.items():
        group = main.commands[group_name]
        assert isinstance(group, click.Group)
        command = group.commands[name]
        if command.callback is not None:
            command.callback = interruptible(state)(command.callback)


_register_subcommands()

if __name__ == "__main__":
    main()
