"""The price table: video by the second and mode, images by the picture, the built-in model free, an
operator's TOML file overriding the defaults model by model."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinema.accounts import ModelPrice, PriceTable
from kinema.errors import InvalidRequest


def test_the_defaults_price_video_by_second_and_mode_and_images_by_count() -> None:
    prices = PriceTable()

    assert prices.price("wan", "text2video", "std", 5.0, 1) == 10
    assert prices.price("wan", "image2video", "pro", 10.0, 1) == 70
    assert prices.price("wan", "extend", "std", 4.5, 1) == 9
    assert prices.price("kolors", "text2image", "std", 0.0, 4) == 4


def test_the_builtin_model_is_free_by_default() -> None:
    prices = PriceTable()

    assert prices.price("builtin", "text2video", "pro", 10.0, 1) == 0
    assert prices.price("builtin", "text2image", "std", 0.0, 9) == 0


def test_prices_round_up_to_whole_credits() -> None:
    prices = PriceTable({"*": ModelPrice(video_std=0.5, video_pro=1.25, image=0.3)})

    assert prices.price("m", "text2video", "std", 5.0, 1) == 3
    assert prices.price("m", "text2video", "pro", 4.0, 1) == 5
    assert prices.price("m", "text2image", "std", 0.0, 10) == 3


def test_a_toml_file_overrides_the_defaults_model_by_model(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[models."*"]\nvideo = { std = 1, pro = 3 }\nimage = 2\n\n[models.wan]\n'
        "video = { std = 4, pro = 8 }\nimage = 0.5\n"
    )

    prices = PriceTable.from_toml(path)

    assert prices.price("wan", "text2video", "pro", 5.0, 1) == 40
    assert prices.price("ltx", "text2video", "std", 5.0, 1) == 5
    assert prices.price("kolors", "text2image", "std", 0.0, 3) == 6
    assert prices.price("builtin", "text2video", "std", 5.0, 1) == 0  # a default the file left alone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[models.wan\n", "is not valid TOML"),
        ("[models.wan]\nvideo = { std = 1 }\nimage = 1\n", "models.wan.video.pro: Field required"),
        ("[models.wan]\nvideo = { std = -1, pro = 1 }\nimage = 1\n", "greater than or equal to 0"),
        ("[models.wan]\nvideo = { std = 1, pro = 1 }\nimage = 1\nsound = 3\n", "models.wan.sound"),
    ],
)
def test_a_bad_price_file_is_refused_with_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text)

    with pytest.raises(InvalidRequest, match=message):
        PriceTable.from_toml(path)


def test_a_model_with_no_price_and_no_default_is_refused() -> None:
    prices = PriceTable({"wan": ModelPrice(1, 2, 3)})

    with pytest.raises(InvalidRequest, match="no price for model 'ltx'"):
        prices.price("ltx", "text2video", "std", 5.0, 1)
    with pytest.raises(InvalidRequest, match="mode 'turbo' has no price"):
        prices.price("wan", "text2video", "turbo", 5.0, 1)
