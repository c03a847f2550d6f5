import subprocess
import sys
from pathlib import Path

import pytest

from kinema.backends.models_file import add_model, read_models_file
from kinema.backends.registry import ModelEntry, Registry
from kinema.errors import ModelLoadError, UnknownModel

GOOD = """
[[models]]
id = "wan-1.3b"
family = "wan"
weights = "./weights/wan"
dtype = "bfloat16"
offload = "model"

[[models]]
id = "ltx"
family = "ltx"
weights = "Lightricks/LTX-Video"
revision = "main"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_entries_carry_family_options_and_resolved_weights(tmp_path: Path) -> None:
    (tmp_path / "weights" / "wan").mkdir(parents=True)
    wan, ltx = read_models_file(write(tmp_path, GOOD))
    assert (wan.id, wan.family) == ("wan-1.3b", "wan")
    assert wan.options == {
        "weights": str(tmp_path / "weights" / "wan"),
        "dtype": "bfloat16",
        "offload": "model",
    }
    assert ltx.options == {"weights": "Lightricks/LTX-Video", "revision": "main"}  # a hub id stays one


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[models]]\nid = 'a'\n", "model #1: family: Field required"),
        ("[[models]]\nid = 'a b'\nfamily = 'wan'\n", "model #1: id: String should match pattern"),
        ("[[models]]\nid = 'a'\nfamily = 'wan'\n[[models]]\nid = 'a'\nfamily = 'ltx'\n", "twice or reserved"),
        ("[[models]]\nid = 'builtin'\nfamily = 'wan'\n", "twice or reserved"),
        ("[[models]\n", "is not valid TOML"),
        ("models = 3\n", "[[models]] tables"),
    ],
)
def test_bad_files_are_refused_in_one_sentence(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_models_file(write(tmp_path, text))


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="KINEMA_MODELS_FILE"):
        read_models_file(tmp_path / "none.toml")


def test_added_models_read_back_with_relative_weights(tmp_path: Path) -> None:
    (tmp_path / "tiny").mkdir()
    path = tmp_path / "models.toml"
    options = {"weights": str(tmp_path / "tiny"), "max_frames": 17, "canvases": {"16:9": [16, 32]}, "x": True}
    add_model(path, ModelEntry("tiny", "wan", options))
    add_model(path, ModelEntry("other", "ltx", {"weights": "owner/name"}))
    assert 'weights = "./tiny"' in path.read_text()
    tiny, other = read_models_file(path)
    assert tiny.options == {**options, "canvases": {"16:9": [16, 32]}}
    assert other.options == {"weights": "owner/name"}
    with pytest.raises(ModelLoadError, match="already serves 'tiny'"):
        add_model(path, ModelEntry("tiny", "wan", {}))


def test_a_model_that_fails_does_not_take_the_others_down() -> None:
    registry = Registry(
        (
            ModelEntry("fake", "fake"),
            ModelEntry("ghost", "no-such-family"),
            ModelEntry("odd", "fake", {"colour": "red"}),
        )
    )
    status = {s.id: s for s in registry.status()}
    assert status["fake"].capabilities is not None and status["fake"].error is None
    assert "no backend family 'no-such-family'" in (status["ghost"].error or "")
    assert "unexpected keyword argument 'colour'" in (status["odd"].error or "")
    assert [c.model for c in registry.capabilities()] == ["fake"]
    with pytest.raises(ModelLoadError, match="no-such-family"):
        registry.get("ghost")
    with pytest.raises(UnknownModel):
        registry.get("nope")


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ModelLoadError, match="share one id"):
        Registry((ModelEntry("a", "fake"), ModelEntry("a", "fake")))


def test_kinema_imports_and_lists_models_without_the_diffusers_extra(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['diffusers'] = sys.modules['transformers'] = None\n"
        "import kinema.backends.wan, kinema.backends.ltx, kinema.backends.cogvideox, kinema.backends.kolors\n"
        "from kinema.backends.registry import ModelEntry, Registry\n"
        "(builtin, wan) = Registry((ModelEntry('builtin', 'builtin'), ModelEntry('w', 'wan'))).status()\n"
        "assert builtin.capabilities is not None, builtin\n"
        "print(wan.error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'kinema[diffusers]'" in done.stdout
