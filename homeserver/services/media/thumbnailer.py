"""Making thumbnails with Pillow: blocking functions, called through `asyncio.to_thread`.

Pillow is imported on the first image handled, not with the server (a few MB of resident
memory that a server nobody uploads images to never needs).

Only JPEG, PNG, GIF and WebP are decoded (every decoder is attack surface), and only after the
image's size, read from its header, is within the pixel limit. Thumbnails never upscale
(spec: "Thumbnails"): an image no larger than the thumbnail asked for is returned as it is.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# The decoders we let Pillow use, and the media type of each.
DECODED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
# The uploaded types we try to thumbnail (what the uploader claimed; the bytes decide).
THUMBNAILABLE_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/gif", "image/webp"})
# The spec recommends WebP for animated thumbnails.
ANIMATED_TYPE = "image/webp"
# An animation costs a resize per frame: past this many decoded pixels (all frames together,
# in multiples of the still-image limit) a static thumbnail is made instead.
_ANIMATION_PIXEL_FACTOR = 4
_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the Image.Transpose (by name) that rights the image.
_TRANSPOSE_FOR_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
                              6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
# Transposes that swap width and height.
_SWAPPING = frozenset({"TRANSPOSE", "TRANSVERSE", "ROTATE_90", "ROTATE_270"})


class NotAnImage(Exception):
    """The content cannot be decoded as one of the supported image formats."""


class ImageTooLarge(Exception):
    """The image has more pixels than the thumbnailer is allowed to decode."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A thumbnail: its bytes and type, or `data` None when the original itself is the thumbnail."""
    data: bytes | None
    media_type: str


def image_size(path: str, max_pixels: int) -> tuple[int, int]:
    """Width and height of an image (read from its header only)."""
    with _open(path, max_pixels) as image:
        return image.size


def render_thumbnail(path: str, width: int, height: int, method: str, animated: bool,
                     max_pixels: int) -> Rendered:
    """A `method` ("crop" or "scale") thumbnail of the image at `path` for a `width`x`height` preset."""
    with _open(path, max_pixels) as image:
        source_type = DECODED_FORMATS[image.format or ""]
        transpose = _orientation_transpose(image)
        src_w, src_h = image.size
        if transpose is not None and transpose.name in _SWAPPING:
            src_w, src_h = src_h, src_w
        is_animated = bool(getattr(image, "is_animated", False))
        frames = int(getattr(image, "n_frames", 1))
        animate = animated and is_animated and src_w * src_h * frames <= max_pixels * _ANIMATION_PIXEL_FACTOR
        if method == "crop":
            scaled, box = _crop_geometry(src_w, src_h, width, height)
        else:
            scaled, box = _scale_geometry(src_w, src_h, width, height), None
        out_size = (box[2] - box[0], box[3] - box[1]) if box else scaled
        if out_size == (src_w, src_h) and transpose is None and (animate or not is_animated):
            return Rendered(None, source_type)  # nothing to shrink: the original is the thumbnail

        def transform(frame: Image.Image) -> Image.Image:
            if transpose is not None:
                frame = frame.transpose(transpose)
            frame = _resized(frame, scaled)
            return frame.crop(box) if box else frame

        if animate:
            return Rendered(_encode_animation(image, transform), ANIMATED_TYPE)
        image.seek(0)
        output_type = "image/jpeg" if source_type == "image/jpeg" or (
            source_type == "image/webp" and not _has_alpha(image)) else "image/png"
        return Rendered(_encode_still(transform(image), output_type), output_type)


def _open(path: str, max_pixels: int) -> Image.Image:
    from PIL import Image

    try:
        image = Image.open(path, formats=list(DECODED_FORMATS))
    except Image.DecompressionBombError as err:
        raise ImageTooLarge() from err
    except (OSError, SyntaxError, ValueError) as err:
        raise NotAnImage() from err
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge()
    return image


def _orientation_transpose(image: Image.Image) -> Image.Transpose | None:
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # EXIF blocks are often malformed; the image is still usable
        return None
    name = _TRANSPOSE_FOR_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    if name is None:
        return None
    from PIL import Image

    return Image.Transpose[name]


def _scale_geometry(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int]:
    """The largest size of the source's aspect that fits in width x height, never upscaled."""
    if src_w <= width and src_h <= height:
        return src_w, src_h
    if width * src_h < height * src_w:
        return width, max(width * src_h // src_w, 1)
    return max(height * src_w // src_h, 1), height


def _crop_geometry(src_w: int, src_h: int, width: int, height: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Scale the source to cover width x height, then cut the middle out: (scaled size, crop box).

    A source too small to cover it is not upscaled: the largest box of the asked aspect is cut
    from it at its own size."""
    if src_w >= width and src_h >= height:
        if width * src_h > height * src_w:
            scaled_w, scaled_h = width, max(width * src_h // src_w, height)
        else:
            scaled_w, scaled_h = max(height * src_w // src_h, width), height
        out_w, out_h = width, height
    else:
        scaled_w, scaled_h = src_w, src_h
        if width * src_h > height * src_w:  # the asked box is wider than the source
            out_w, out_h = src_w, max(src_w * height // width, 1)
        else:
            out_w, out_h = max(src_h * width // height, 1), src_h
    left, top = (scaled_w - out_w) // 2, (scaled_h - out_h) // 2
    return (scaled_w, scaled_h), (left, top, left + out_w, top + out_h)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    # Palette and 1-bit images resize badly (nearest neighbour): convert them first.
    if image.mode in ("1", "L", "P", "PA", "LA", "I", "I;16", "F"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    if image.size == size:
        return image
    from PIL import Image

    return image.resize(size, Image.Resampling.LANCZOS)


def _encode_still(image: Image.Image, media_type: str) -> bytes:
    out = io.BytesIO()
    if media_type == "image/jpeg":
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=80)
    else:
        if image.mode == "CMYK":
            image = image.convert("RGB")
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _encode_animation(image: Image.Image, transform: Callable[[Image.Image], Image.Image]) -> bytes:
    from PIL import ImageSequence

    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        frames.append(transform(frame.convert("RGBA")))
        durations.append(int(frame.info.get("duration", image.info.get("duration", 100)) or 0))
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=durations,
                   loop=int(image.info.get("loop", 0) or 0), quality=80)
    return out.getvalue()
