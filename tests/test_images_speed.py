"""The AVIF encoder speed: a setting of [images], part of the cache key, checked when read."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from sitedeploy import config
from sitedeploy.errors import ConfigError
from sitedeploy.images import spec_from
from sitedeploy.images.cache import cache_key
from sitedeploy.images.variants import AVIF_SPEED, encode


def _photo() -> Image.Image:
    im = Image.linear_gradient("L").resize((480, 320)).convert("RGB")
    return Image.merge("RGB", (im.getchannel(0), im.rotate(90).getchannel(0), im.getchannel(0)))


def test_avif_speed_reaches_the_encoder_and_the_cache_key() -> None:
    fast = spec_from(config.ImagesConfig(avif_speed=10))
    slow = spec_from(config.ImagesConfig(avif_speed=4))
    assert spec_from(config.ImagesConfig()).avif_speed == AVIF_SPEED
    assert cache_key(b"same image", fast) != cache_key(b"same image", slow)
    im = _photo()
    fast_bytes, slow_bytes = encode(im, "avif", fast, None), encode(im, "avif", slow, None)
    assert fast_bytes != slow_bytes
    for data in (fast_bytes, slow_bytes):
        assert Image.open(io.BytesIO(data)).size == (480, 320)


@pytest.mark.parametrize("speed", [-1, 11])
def test_avif_speed_out_of_range_is_a_config_error(speed: int) -> None:
    with pytest.raises(ConfigError, match=r"images: avif_speed goes from 0"):
        config.from_dict({"images": {"avif_speed": speed}}, Path("/x/deploy.toml"))
