"""The report page: one self-contained HTML file (figures embedded as base64 PNG, no external links).

Sections follow :data:`analysis.session.STUDIES`; each shows its description, figures, a summary
table and a link to its CSV (relative, so the folder can be moved or zipped as a whole).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_report", "render_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
header { background: #1d2430; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 6px 0; font-size: 22px; }
header p { margin: 2px 0; font-size: 14px; color: #cfd6e0; }
main { max-width: 1500px; margin: 0 auto; padding: 8px 32px 40px 32px; }
nav { margin: 14px 0; font-size: 14px; }
nav a { margin-right: 14px; }
section { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; padding: 14px 22px; margin: 18px 0; }
h2 { margin: 4px 0 8px 0; font-size: 19px; }
p.desc { max-width: 1100px; line-height: 1.45; font-size: 14px; }
p.note { font-size: 13px; color: #4a5668; margin: 4px 0; }
.warn { background: #fff3cd; border: 1px solid #e0b74a; color: #5c4300; padding: 10px 16px; border-radius: 6px; margin-top: 16px; font-weight: 600; }
.figs { display: flex; flex-wrap: wrap; gap: 10px 24px; align-items: flex-start; }
figure { margin: 12px 0; max-width: 100%; }
figure.half { max-width: calc(50% - 12px); }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e4e8ee; }
figcaption { font-size: 13px; color: #4a5668; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0 14px 0; }
caption { text-align: left; font-weight: 600; padding: 4px 0; font-size: 13px; }
th, td { border: 1px solid #dde2ea; padding: 3px 8px; text-align: right; }
th { background: #eef1f5; }
td.txt, th.txt { text-align: left; }
.tables { display: flex; flex-wrap: wrap; gap: 28px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 13px; }
dt { font-weight: 600; }
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return "&ndash;" if not math.isfinite(value) else f"{value:.3f}"
    return html.escape(str(value))


_UNSET = {"box": "the face box of each clean image", "levels": "all"}


def _option(key: str, value: Any) -> str:
    if value is None:
        return html.escape(_UNSET.get(key, "all"))
    if isinstance(value, (list, tuple)):
        return html.escape(", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value))
    return _fmt(value)


def _png_width(path: Path) -> int:
    # the IHDR chunk of a PNG starts at byte 16: width, height as big-endian uint32
    head = Path(path).read_bytes()[:24]
    return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else 10**6


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).stem)}">'


def _table(view) -> str:
    head = "".join(f'<th class="{"txt" if i == 0 else ""}">{html.escape(str(c))}</th>' for i, c in enumerate(view.columns))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"txt" if isinstance(v, str) else ""}">{_fmt(v)}</td>' for v in row) + "</tr>" for row in view.rows
    )
    return f"<table><caption>{html.escape(view.caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _anchor(name: str) -> str:
    return "study-" + name.replace(" ", "-")


def _section(result, out_dir: Path) -> str:
    parts = [f'<section id="{_anchor(result.name)}"><h2>{html.escape(result.title)}</h2>']
    parts.append(f'<p class="desc">{html.escape(result.description)}</p>')
    parts.append('<div class="figs">')
    for caption, path in result.figures:
        half = ' class="half"' if _png_width(path) <= 900 else ""  # two narrow figures share a row
        parts.append(f"<figure{half}>{_img(path)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</div>")
    if result.views:
        parts.append('<div class="tables">' + "".join(_table(v) for v in result.views) + "</div>")
    try:
        rel = Path(result.csv).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        rel = Path(result.csv).as_posix()
    parts.append(f'<p class="note">Full table: <a href="{html.escape(rel)}">{html.escape(rel)}</a> ({len(result.rows)} rows). '
                 f"Took {result.seconds:.1f} s.</p>")
    parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in result.notes)
    parts.append("</section>")
    return "\n".join(parts)


def render_report(
    results: Sequence[Any],
    *,
    out_dir: Path,
    title: str,
    model: str,
    identity: Mapping[str, Any],
    data: Mapping[str, Any],
    options: Mapping[str, Any],
    seconds: float,
) -> str:
    """The HTML text of the report (see :func:`write_report`)."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    warn = ""
    if identity.get("untrained"):
        warn = '<div class="warn">UNTRAINED WEIGHTS: this model is random; every number below is meaningless except as a test of the tooling.</div>'
    nav = "".join(f'<a href="#{_anchor(r.name)}">{html.escape(r.title)}</a>' for r in results)
    shown = ("limit", "seed", "families", "levels", "sweep_families", "strengths", "cam", "cam_limit", "box")
    opts = "".join(f"<dt>{html.escape(k)}</dt><dd>{_option(k, options.get(k))}</dd>" for k in shown if k in options)
    body = "\n".join(_section(r, out_dir) for r in results)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<p>Model: {html.escape(model)} (fingerprint {html.escape(str(identity.get("fingerprint")))})</p>
<p>Data: {html.escape(str(data.get("source")))}: {data.get("images")} images ({data.get("real")} real, {data.get("fake")} fake);
Score-CAM on {data.get("score_cam_images")} of them. Written {stamp}, {seconds:.0f} s.</p>
</header>
<main>
{warn}
<nav>{nav}</nav>
<section><h2>Run</h2><dl>{opts}</dl></section>
{body}
</main>
</body>
</html>
"""


def write_report(path: str | Path, results: Sequence[Any], **kwargs: Any) -> Path:
    """Writes the report page for ``results`` (:class:`analysis.session.StudyResult`) to ``path``.

    Keyword arguments: ``title``, ``model`` (a one-line description), ``identity`` (see
    :func:`analysis.store.model_identity`), ``data`` (source, images, real, fake,
    score_cam_images), ``options`` and ``seconds``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(results, out_dir=path.parent, **kwargs), encoding="utf-8")
    return path
