"""Safe decoding of untrusted image input into RGB ``uint8`` arrays.

Everything that enters the library from outside (an upload in the web app, a path on the command
line, a file in a batch job, an array handed over by code) goes through :func:`decode_image`. It
refuses what it cannot decode correctly with one typed error, :class:`ImageError`, whose message is
a single line a non-expert can act on; it never lets a Pillow, OS or numpy exception escape.

What it does, in order:

0. refuse a path that is a named pipe, device or socket from its ``stat``, without opening it
   (reading one would wait for a writer, or never end);
1. open the file with Pillow restricted to a few common formats (some Pillow plugins are large
   attack surfaces, and EPS would even run Ghostscript);
2. check the size stored in the header against a pixel limit, a minimum side and a maximum aspect
   ratio (:data:`MAX_ASPECT_RATIO`) *before* any pixel is decoded, so a decompression bomb or a
   16x50,000 sliver costs nothing;
3. take the first frame of animated or multi-page files;
4. apply the EXIF orientation;
5. convert any mode (bilevel, grey, palette, CMYK, YCbCr, 16-bit, 32-bit integer, float, with or
   without transparency) to RGB ``uint8``, compositing transparency on white.

Each non-trivial step is recorded as a human-readable note in :class:`DecodedImage`.

Modules: :mod:`~forensic.images.decode` (the steps above), :mod:`~forensic.images.decoded`
(:class:`DecodedImage`, what they give), :mod:`~forensic.images.pixels` (modes and array layouts to
RGB), :mod:`~forensic.images.scale` (bounded copies of big images) and
:mod:`~forensic.images.errors` (:class:`ImageError` and its messages).
"""

from .decode import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
    MAX_PIXELS_ENV,
    ImageSource,
    decode_image,
    default_max_pixels,
    load_image,
    special_file_kind,
)
from .decoded import DecodedImage
from .errors import MAX_ASPECT_RATIO, ImageError
from .pixels import ensure_rgb_uint8
from .scale import bounded, fit_pixels

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "MAX_ASPECT_RATIO",
    "MAX_PIXELS_ENV",
    "DecodedImage",
    "ImageError",
    "ImageSource",
    "bounded",
    "fit_pixels",
    "decode_image",
    "default_max_pixels",
    "ensure_rgb_uint8",
    "load_image",
    "special_file_kind",
]
