import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from kinema.backends.builtin_weights import save_model
from kinema.cli.main import app
from kinema.engine import video
from kinema.models.dit import PRESETS, VideoDiT

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_model(VideoDiT(PRESETS["tiny"]), path, {"training": {"steps": 0, "minutes": 0}})
    return path


@pytest.fixture(autouse=True)
def use_tiny(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINEMA_BUILTIN_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("KINEMA_TORCH_THREADS", "1")


def test_generate_writes_a_playable_mp4_and_a_poster(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            "a red star rising on a gray background",
            "-o",
            str(out),
            "--seed",
            "3",
            "--steps",
            "2",
            "--aspect",
            "9:16",
        ],
    )
    assert result.exit_code == 0, result.output
    info = video.probe(out)
    assert (info.num_frames, info.fps, info.height > info.width) == (40, 8, True)
    assert out.with_suffix(".png").is_file()
    assert "seed 3" in result.stdout


def test_several_candidates_get_numbered_files(tmp_path: Path) -> None:
    out = tmp_path / "draw.mp4"
    result = runner.invoke(
        app, ["generate", "a cyan box", "-o", str(out), "--n", "2", "--steps", "1", "--duration", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "draw-0.mp4").is_file() and (tmp_path / "draw-1.mp4").is_file()


def test_extend_and_image_to_video(tmp_path: Path) -> None:
    base = tmp_path / "base.mp4"
    assert (
        runner.invoke(
            app, ["generate", "a ball", "-o", str(base), "--steps", "1", "--duration", "2"]
        ).exit_code
        == 0
    )
    longer = tmp_path / "longer.mp4"
    result = runner.invoke(
        app,
        ["generate", "a ball", "--extend", str(base), "--seconds", "2", "-o", str(longer), "--steps", "1"],
    )
    assert result.exit_code == 0, result.output
    assert video.probe(longer).num_frames == 32
    moved = tmp_path / "i2v.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            "moving left",
            "--image",
            str(base.with_suffix(".png")),
            "-o",
            str(moved),
            "--steps",
            "1",
            "--duration",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output


def test_image_command_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "still.png"
    result = runner.invoke(
        app, ["image", "a white star on a maroon background", "-o", str(out), "--aspect", "1:1"]
    )
    assert result.exit_code == 0, result.output
    assert video.read_image(out, max_pixels=10**7).shape == (288, 288, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", ""], "prompt is empty"),
        (["generate", "x", "--aspect", "4:3"], "--aspect must be"),
        (["generate", "x", "--image", "/no/such.png"], "does not exist"),
        (["generate", "x", "--model", "wan-99"], "unknown model 'wan-99'"),
        (["generate", "x", "--n", "9"], "n: Input should be less than or equal to 4"),
        (["generate", "x", "--guidance", "50"], "guidance_scale"),
    ],
)
def test_bad_input_is_one_clear_sentence_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_models_lists_the_builtin_model_with_capabilities() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    (builtin,) = json.loads(result.stdout)
    assert builtin["model"] == "builtin" and "text2video" in builtin["kinds"]


def test_training_refuses_a_bad_device_preset_or_batch_in_one_sentence(tmp_path: Path) -> None:
    where = ["--weights", str(tmp_path / "w.safetensors"), "--state", str(tmp_path / "state.pt")]
    cases = {
        ("--preset", "huge"): "unknown preset 'huge'; choose one of builtin-s",
        ("--batch-size", "0"): "batch_size must be at least 1, not 0",
        ("--data-workers", "-2"): "data_workers must be 0 or more, not -2",
        ("--device", "quantum"): "unknown training device 'quantum'",
        ("--cooldown-steps", "0"): "a cooldown needs at least 1 step, not 0",
        ("--object-weight", "-1"): "object_weight must be 0 or more, not -1.0",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["train", "builtin", "--minutes", "0.01", *where, *args])
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert not (tmp_path / "w.safetensors").exists()
