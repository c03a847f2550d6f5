import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from kinema.cli.main import app
from kinema.engine import video

runner = CliRunner()


def one_line(output: str) -> str:
    """The console wraps long errors; the tests read them as one line."""
    return " ".join(output.split())


@pytest.fixture(scope="module")
def models_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    for family in ("wan", "ltx"):
        result = runner.invoke(app, ["models", "make-tiny", family, str(root / family)])
        assert result.exit_code == 0, result.output
    return root / "models.toml"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINEMA_TORCH_THREADS", "1")


def test_models_lists_the_tiny_models_beside_the_builtin(
    models_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINEMA_MODELS_FILE", str(models_file))
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listed = {c["model"]: c for c in json.loads(result.stdout)}
    assert set(listed) == {"builtin", "tiny-wan", "tiny-ltx"}
    assert listed["tiny-wan"]["family"] == "wan" and listed["tiny-ltx"]["frame_multiple"] == 8
    assert runner.invoke(app, ["models"]).exit_code == 0


@pytest.mark.parametrize("model", ["tiny-wan", "tiny-ltx"])
def test_generate_with_a_tiny_model_from_the_models_file(
    model: str, models_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINEMA_MODELS_FILE", str(models_file))
    out = tmp_path / "clip.mp4"
    args = ["generate", "a red ball", "--model", model, "-o", str(out), "--seed", "1", "--duration", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert video.probe(out).fps == 24 and "seed 1" in result.stdout


def test_a_broken_model_is_reported_and_the_others_still_serve(
    models_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "models.toml"
    broken.write_text(
        models_file.read_text().replace("./", f"{models_file.parent}/")
        + '\n[[models]]\nid = "gone"\nfamily = "wan"\nweights = "/no/such/folder"\ndevice = "cpu"\n'
    )
    monkeypatch.setenv("KINEMA_MODELS_FILE", str(broken))
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    assert "unavailable: gone (wan)" in result.stderr and "/no/such/folder does not exist" in result.stderr
    assert {c["model"] for c in json.loads(result.stdout)} == {"builtin", "tiny-wan", "tiny-ltx"}
    failed = runner.invoke(app, ["generate", "x", "--model", "gone", "-o", str(tmp_path / "x.mp4")])
    assert failed.exit_code == 2 and "Traceback" not in failed.output
    assert "does not exist" in one_line(failed.output)


def test_make_tiny_refuses_unknown_families_and_full_folders(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "make-tiny", "builtin", str(tmp_path / "b")])
    assert result.exit_code == 2 and "has no tiny variant" in one_line(result.output)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = runner.invoke(app, ["models", "make-tiny", "wan", str(tmp_path / "full")])
    assert result.exit_code == 2 and "is not empty" in one_line(result.output)
