"""Test images covering the decoder's hard cases, drawn with PIL from a seed (nothing downloaded)."""

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _scene(w: int, h: int, rng: random.Random) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 / max(w - 1, 1)), (y * 255 / max(h - 1, 1)), ((x + y) * 127 / max(w + h - 2, 1))], -1)
    img = Image.fromarray(base.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(1, max(2, w // 2)), y0 + rng.randrange(1, max(2, h // 2))
        color = tuple(rng.randrange(256) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=color)
    return img


def write_test_images(out: Path, seed: int = 7) -> list[str]:
    """Writes the images and returns their file names. Each is a case the TS decoder must handle."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    files["photo.jpg"] = lambda p: _scene(320, 240, rng).save(p, quality=92)
    files["tall.png"] = lambda p: _scene(150, 400, rng).save(p)
    files["grey.png"] = lambda p: _scene(200, 200, rng).convert("L").save(p)
    files["alpha.png"] = lambda p: _with_alpha(_scene(256, 256, rng)).save(p)
    files["palette.gif"] = lambda p: _scene(180, 120, rng).convert("P", palette=Image.Palette.ADAPTIVE).save(p)
    files["animated.gif"] = lambda p: _animated(rng).save(p, save_all=True, append_images=_frames(rng), duration=100)
    files["cmyk.jpg"] = lambda p: _scene(240, 240, rng).convert("CMYK").save(p, quality=95)
    files["sixteen-bit.png"] = lambda p: _sixteen_bit(rng).save(p)
    files["exif-rotated.jpg"] = lambda p: _exif_rotated(rng, p)
    files["small.webp"] = lambda p: _scene(200, 300, rng).save(p, quality=90)
    files["scan.tiff"] = lambda p: _scene(230, 260, rng).save(p)
    files["modern.avif"] = lambda p: _scene(260, 200, rng).save(p, quality=90)
    files["one-pixel.png"] = lambda p: Image.new("RGB", (1, 1), (200, 30, 60)).save(p)
    files["wide.png"] = lambda p: _scene(4000, 10, rng).save(p)
    for name, write in files.items():
        write(out / name)
    return list(files)


def _with_alpha(img: Image.Image) -> Image.Image:
    a = Image.linear_gradient("L").resize(img.size)
    img = img.copy()
    img.putalpha(a)
    return img


def _frames(rng: random.Random) -> list[Image.Image]:
    return [_scene(120, 90, rng).convert("P") for _ in range(2)]


def _animated(rng: random.Random) -> Image.Image:
    return _scene(120, 90, rng).convert("P")


def _sixteen_bit(rng: random.Random) -> Image.Image:
    grey = np.asarray(_scene(200, 160, rng).convert("L"), dtype=np.uint16) * 257  # full 16-bit range
    return Image.fromarray(grey)  # uint16 -> mode I;16


def _exif_rotated(rng: random.Random, path: Path) -> None:
    img = _scene(300, 200, rng)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(path, quality=92, exif=exif.tobytes())


def load_for_reference(path: Path) -> Image.Image:
    """How the reference pipeline reads a file: PIL, first frame, EXIF orientation applied."""
    from PIL import ImageOps

    img = Image.open(io.BytesIO(path.read_bytes()))
    img.seek(0)
    return ImageOps.exif_transpose(img)
