"""/healthz asked while the worker starts: Faust starts its web server before its Kafka consumer,
the tables' recovery and the model's load. The answer is an honest 503 "starting" until the
worker is ready (it used to be 200 "ok" seconds before), never a 500 with a
``ConsumerNotStarted`` traceback, which is what CI once caught."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from streams.app import build_app
from streams.kafka_local import free_port
from streams.settings import Settings
from streams.web_listener import bind_web_sockets


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


def test_healthz_before_the_consumer_runs_says_starting(tmp_path: Path) -> None:
    port = free_port()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never reached: only the web server runs
        topic_prefix=prefix,
        app_id=f"test-{prefix.rstrip('.')}",
        data_dir=tmp_path,
        web_host="127.0.0.1",
        web_port=port,
    )
    app, _ = build_app(settings, web_listeners=bind_web_sockets("127.0.0.1", port))

    async def ask_while_starting() -> list[tuple[int, dict[str, object]]]:
        # Where the worker is when the web server comes up: the app's start has begun (Faust
        # starts the web service before the consumer), the consumer thread has not, the tables
        # are not recovered and the model is not loaded.
        app._started.set()
        await app.web.start()
        try:
            answers = [await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")]
            app.mark_ready()  # and were the consumer thread still not there: no 500 either
            answers.append(await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz"))
            return answers
        finally:
            await app.web.stop()

    for status, body in asyncio.run(ask_while_starting()):
        assert status == 503
        assert body["status"] == "starting"
        assert body["partitions"] == 0
