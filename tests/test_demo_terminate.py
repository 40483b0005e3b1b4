"""SIGTERM or SIGHUP (``kill``, a closed terminal) must stop the demo cleanly, as Ctrl-C does.

Their default ended Python at once, so the demo's clean stop never ran and the Kafka broker, in
a session of its own, kept running. The demo runs in a child process here (so that the old
behaviour could not kill the test run), with Kafka, the worker and the stop faked: the child
signals itself while the story plays and reports whether the stop ran."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from contextlib import contextmanager
    from pathlib import Path
    from streams import demo
    from streams.settings import Settings

    def start(stack, *_args):
        return Settings(), "http://127.0.0.1:9"

    @contextmanager
    def producer(_settings):
        yield lambda *_a: None

    def backfill(*_args):
        os.kill(os.getpid(), int(sys.argv[1]))
        raise AssertionError("the signal did not stop the demo")

    demo._start = start
    demo._producer = producer
    demo._backfill = backfill
    demo.Stack.stop = lambda self, console: print("STACK STOPPED", flush=True)
    code = demo.run_demo(Settings(), options=demo.DemoOptions(report_dir=Path(sys.argv[2])))
    print("EXIT", code, flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_termination_signal_stops_the_demo_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(int(sig)), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "STACK STOPPED" in result.stdout, (result.returncode, result.stdout, result.stderr)
    assert "EXIT 130" in result.stdout
