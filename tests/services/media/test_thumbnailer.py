"""Thumbnail geometry and rendering with Pillow, on images made in the test."""

import io

import pytest
from PIL import Image

from homeserver.services.media.thumbnailer import ImageTooLarge, NotAnImage, image_size, render_thumbnail
from homeserver.services.media.thumbnails import choose_preset


def write(tmp_path, image: Image.Image, fmt: str, **save) -> str:
    path = tmp_path / f"source.{fmt.lower()}"
    image.save(path, fmt, **save)
    return str(path)


@pytest.mark.parametrize("asked, preset", [
    ((1, 1, "crop"), (32, 32)), ((32, 32, "crop"), (32, 32)), ((33, 10, "crop"), (96, 96)),
    ((500, 500, "crop"), (96, 96)), ((320, 240, "scale"), (320, 240)), ((321, 10, "scale"), (640, 480)),
    ((10, 481, "scale"), (800, 600)), ((4000, 4000, "scale"), (800, 600)),
])
def test_choose_preset(asked, preset):
    chosen = choose_preset(*asked)
    assert (chosen.width, chosen.height) == preset and chosen.method == asked[2]


def test_scale_keeps_the_aspect_and_crop_fills_the_box(tmp_path):
    path = write(tmp_path, Image.new("RGB", (1200, 300), "red"), "JPEG")
    scaled = render_thumbnail(path, 320, 240, "scale", False, 10**8)
    assert scaled.media_type == "image/jpeg" and Image.open(io.BytesIO(scaled.data)).size == (320, 80)
    cropped = render_thumbnail(path, 96, 96, "crop", False, 10**8)
    assert Image.open(io.BytesIO(cropped.data)).size == (96, 96)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: a 400x200 picture shows as 200x400
    path = write(tmp_path, Image.new("RGB", (400, 200), "blue"), "JPEG", exif=exif)
    rendered = render_thumbnail(path, 320, 240, "scale", False, 10**8)
    assert Image.open(io.BytesIO(rendered.data)).size == (120, 240)


def test_transparency_is_kept_as_png(tmp_path):
    path = write(tmp_path, Image.new("RGBA", (300, 300), (0, 0, 0, 0)), "WEBP")
    rendered = render_thumbnail(path, 96, 96, "crop", False, 10**8)
    assert rendered.media_type == "image/png"
    assert Image.open(io.BytesIO(rendered.data)).getpixel((0, 0))[3] == 0


def test_refusals(tmp_path):
    with pytest.raises(NotAnImage):
        render_thumbnail(write_bytes(tmp_path, b"%PDF-1.4 not an image"), 32, 32, "crop", False, 10**8)
    svg = write_bytes(tmp_path, b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(NotAnImage):
        image_size(svg, 10**8)
    big = write(tmp_path, Image.new("L", (1000, 1000)), "PNG")
    with pytest.raises(ImageTooLarge):
        render_thumbnail(big, 32, 32, "crop", False, 999_999)


def write_bytes(tmp_path, data: bytes) -> str:
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return str(path)
