"""`kinema worker`: its help, and a real process that runs a queued task and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from kinema.cli.main import app
from kinema.engine import video
from kinema.jobs import open_store

KINEMA = Path(sys.executable).with_name("kinema")


def test_worker_help_names_its_options() -> None:
    result = CliRunner().invoke(app, ["worker", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--data-dir", "--database-url", "--models", "--concurrency"):
        assert option in result.output


def test_worker_refuses_a_model_it_does_not_serve(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["worker", "--data-dir", str(tmp_path), "--models", "nope"])
    assert result.exit_code == 2
    assert "names no model served here (nope)" in result.output


def test_worker_process_runs_a_task_and_stops_on_sigterm(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text('[[models]]\nid = "fake"\nfamily = "fake"\n')
    data = tmp_path / "data"
    data.mkdir()
    store = open_store(f"sqlite:///{data / 'kinema.db'}")
    spec = {"kind": "text2video", "model": "fake", "prompt": "a blue square", "num_frames": 8, "seed": 3}
    task = store.create(account_id="acct", kind="text2video", model="fake", request={"spec": spec})
    env = {**os.environ, "KINEMA_MODELS_FILE": str(models), "KINEMA_TORCH_THREADS": "1"}
    process = subprocess.Popen(
        [str(KINEMA), "worker", "--data-dir", str(data), "--models", "fake"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (done := store.get(task.task_id, "acct")) is not None and not done.finished:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the worker did not finish the task in 60 s"
            time.sleep(0.05)
        assert [w.models[0]["id"] for w in store.workers()] == ["fake"]
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "running fake tasks from sqlite:///" in output
    assert done is not None and done.status == "succeed", done
    assert video.probe(data / "media" / done.outputs[0]["key"]).num_frames == 8
    assert store.workers() == []  # it removed itself
    store.close()
