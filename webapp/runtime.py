"""Runtime glue: ZeroGPU when available, an image input that lets our decoder judge the bytes, decode cache."""

from __future__ import annotations

import contextvars
import ctypes
import ctypes.util
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import gradio as gr

from forensic.images import DecodedImage, ImageError, decode_image

__all__ = ["on_gpu", "on_model_thread", "release_free_memory", "limit_malloc_arenas", "MALLOC_ARENAS", "UploadImage", "decode_upload", "user_error", "default_explain"]

def default_explain(detector: Any) -> str:
    """The explanation mode the app starts with: ``fast``, or ``none`` for a large model on a CPU.

    The rule is the library's (:func:`forensic.explain.default_method`); no model: ``fast``.
    """
    if detector is None:
        return "fast"
    from forensic.explain import default_method

    return default_method(detector.model, device=detector.device)


log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def on_gpu(fn: F, *, duration: int = 120) -> F:
    """``spaces.GPU(duration=...)(fn)`` when the ``spaces`` package is importable, else ``fn`` itself.

    On a Hugging Face ZeroGPU Space a GPU is attached only while a function decorated by
    ``spaces.GPU`` runs; anywhere else ``spaces`` is not installed and the function runs as is.
    """
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    log.info("ZeroGPU: %s runs under spaces.GPU(duration=%d)", getattr(fn, "__name__", fn), duration)
    return spaces.GPU(duration=duration)(fn)


_model_pool: ThreadPoolExecutor | None = None
_model_pool_lock = threading.Lock()


def on_model_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs ``fn(*args, **kwargs)`` on the process's single model thread and returns its result.

    Gradio runs handlers on a pool of up to 40 threads. PyTorch's CPU backend (OpenMP, oneDNN)
    keeps a team of worker threads and scratch buffers for *each* thread that calls into it, so
    model calls spread over that pool made the server's memory grow by hundreds of MB before it
    levelled off (bench/app_load.py). One long-lived thread keeps one team. The caller's context
    is carried over, so ``gr.Progress`` still reaches the right event.
    """
    global _model_pool
    if _model_pool is None:
        with _model_pool_lock:
            if _model_pool is None:
                _model_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forensic-model")
    try:
        return _model_pool.submit(contextvars.copy_context().run, fn, *args, **kwargs).result()
    finally:
        release_free_memory()


@functools.cache
def _glibc(name: str) -> Callable[..., int] | None:
    """A function of glibc's malloc (``malloc_trim``, ``mallopt``), or None where glibc is not the allocator."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return getattr(libc, name)  # glibc only; musl has neither
    except (OSError, AttributeError):
        return None


#: glibc malloc arenas the server may use. By default every thread that allocates while others do gets
#: an arena of its own, up to 8 per core, and each keeps its freed pages fragmented: under waves of
#: concurrent requests (Gradio's workers, the model thread, each call's loader threads) the idle RSS
#: rose ~10-50 MB per wave without levelling off, while the Python heap stayed the same size
#: (tracemalloc, gc); malloc_trim gave back only part of it. With 2 arenas the idle RSS stays flat
#: (README "Memory"; tests/test_soak.py), at no measurable cost in latency.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Caps glibc's malloc arenas (``mallopt(M_ARENA_MAX, arenas)``); call it first thing in the server.

    It holds for arenas created afterwards (glibc fixes its limit once 8 arenas exist). The
    ``MALLOC_ARENA_MAX`` environment variable, when set, wins (nothing is changed). Returns whether
    the cap was set; a no-op where glibc is not the allocator.
    """
    mallopt = _glibc("mallopt")
    if mallopt is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(mallopt(_M_ARENA_MAX, int(arenas)))


def release_free_memory() -> None:
    """Hands memory the allocator holds but no longer uses back to the OS (glibc ``malloc_trim``).

    An analysis allocates and frees a few hundred MB of image, feature and figure buffers across
    Gradio's threads; glibc keeps the freed pages in per-thread arenas, so the server's RSS climbed
    by ~5 MB per call although nothing was leaked (after a trim it stays flat, bench/app_load.py).
    A no-op where glibc is not the allocator.
    """
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


class UploadImage(gr.Image):
    """``gr.Image(type="filepath")`` that hands the uploaded file to the handler without opening it.

    ``gr.Image`` opens every upload with Pillow before any handler runs, so a text file named
    ``.png`` or a decompression bomb fails inside Gradio with a bare "Error". Passing the path on
    lets :func:`forensic.images.decode_image` refuse it with a message the user can act on.
    Create it with ``type="filepath", image_mode=None`` (what it returns); ``__init__`` is not
    overridden because Gradio reads the component's settings from its signature.
    """

    def get_block_name(self) -> str:
        return "image"  # the browser side is the stock Image component

    def preprocess(self, payload: Any) -> str | None:
        if payload is None:
            return None
        if getattr(payload, "path", None) and not str(getattr(payload, "url", "") or "").startswith("data:"):
            return str(payload.path)
        return super().preprocess(payload)  # base64 data URLs (streaming webcams) are Gradio's to decode


@functools.lru_cache(maxsize=4)
def _decode(path: str, mtime_ns: int, size: int, fit: int | None) -> DecodedImage:
    # keyed on the file's identity: slider moves re-use the decoded upload instead of re-reading it
    return decode_image(path, fit=fit)


#: seconds a request waits for its upload to appear: Gradio answers an upload before its background task
#: has moved the file into the cache, so under load the request can come first ("No such file")
UPLOAD_WAIT_S = 5.0


def _stat_upload(path: str) -> os.stat_result:
    deadline = time.monotonic() + UPLOAD_WAIT_S
    while True:
        try:
            return os.stat(path)
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def decode_upload(path: str | None, max_pixels: int | None = None) -> DecodedImage:
    """The decoded upload (cached per file), or a ``gr.Error`` with a message the user can act on.

    ``max_pixels``: a bigger upload is scaled down to fit while it is decoded (its
    ``scaled_from`` and notes say so), so the cache holds at most that many pixels per file.
    """
    if not path:
        raise gr.Error("Upload an image first (or pick one of the examples).", title="No image", print_exception=False)
    try:
        st = _stat_upload(path)
        return _decode(os.fspath(path), st.st_mtime_ns, st.st_size, max_pixels)
    except ImageError as exc:
        raise gr.Error(str(exc), title="Not a usable image", print_exception=False) from exc
    except OSError as exc:
        raise gr.Error(f"The upload could not be read ({exc.strerror}); please upload it again.", title="Upload lost",
                       print_exception=False) from exc


def user_error(exc: Exception) -> gr.Error:
    """A ``gr.Error`` carrying the first line of a library error (SpecError, ValueError ...)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return gr.Error(text, print_exception=False)
