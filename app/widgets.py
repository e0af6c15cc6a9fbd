"""UI pieces the Studio pages share: labelled set grids, side-by-side comparisons, loss plots,
the method picker, job status lines and URL-synced choices.

The image builders are plain numpy/PIL (testable without Streamlit); the rest draw with st.*.
"""
from __future__ import annotations

import datetime as _dt
import secrets
import struct
import zlib
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw, ImageFont
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app import audience
from app.text import plain  # noqa: F401 (pages import it from here)
from ddcore.platform.bridge import custom_preset, make_grid, pin_this_thread

STATUS_ICONS = {"queued": "⏳", "running": "▶️", "paused": "⏸️", "done": "✅", "stopped": "⏹️", "failed": "❌",
                "cancelled": "🚫", "interrupted": "⚠️"}
LABEL_COLOUR = (49, 51, 63)
MUTED = (120, 124, 140)


# ---------------------------------------------------------------------- image builders (no st.*)
@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def display_scale(image_size: int, per_row: int, target_width: int = 640, rows: int = 1,
                  max_height: int = 720) -> int:
    """An integer upscale so small images stay crisp but a wide row (or many rows) still fits the page."""
    by_width = target_width // max(1, per_row * (image_size + 2))
    by_height = max_height // max(1, rows * (image_size + 2))
    return max(1, min(4, by_width, by_height))


def class_rows(labels: np.ndarray, num_classes: int) -> list[list[int]]:
    hard = labels.argmax(1) if labels.ndim == 2 else labels
    return [np.flatnonzero(hard == c).tolist() for c in range(num_classes)]


def labelled_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *, scale: int | None = None,
                  max_per_class: int | None = None, classes: Sequence[int] | None = None,
                  pad: int = 2) -> np.ndarray:
    """One row per class with its name on the left: the way every page shows a set (RGB uint8)."""
    rows = class_rows(np.asarray(labels), len(class_names))
    chosen = list(classes) if classes is not None else list(range(len(class_names)))
    rows = [rows[c] for c in chosen]
    per_row = max((len(r) for r in rows), default=1)
    if max_per_class:
        per_row = min(per_row, max_per_class)
    size = images.shape[1]
    scale = scale or display_scale(size, per_row, rows=len(rows))
    grid = make_grid(_rgb(images), rows, pad=pad, scale=scale, max_per_row=max_per_class)
    return _with_row_labels(grid, [class_names[c] for c in chosen], row_height=(size + pad) * scale,
                            top=pad * scale)


def class_grid(images: np.ndarray, indices: Sequence[int], *, per_row: int = 5, limit: int = 20,
               width: int = 440, pad: int = 2) -> tuple[np.ndarray, int]:
    """One class's images large, wrapped in rows of `per_row` (the first `limit`), scaled to about `width` pixels:
    the "look at one class" view. Returns the grid and how many images it shows."""
    shown = list(indices)[:limit]
    per_row = max(1, min(per_row, len(shown) or 1))
    size = images.shape[1]
    scale = max(1, min(6, width // (per_row * (size + pad))))
    rows = [shown[k:k + per_row] for k in range(0, len(shown), per_row)] or [[]]
    return make_grid(_rgb(images), rows, pad=pad, scale=scale), len(shown)


def _with_row_labels(grid: np.ndarray, names: Sequence[str], row_height: int, top: int) -> np.ndarray:
    font_size = int(max(11, min(16, row_height * 0.45)))
    font = _font(font_size)
    width = max((_text_width(font, n) for n in names), default=0) + 12
    canvas = Image.new("RGB", (grid.shape[1] + width, grid.shape[0]), (255, 255, 255))
    canvas.paste(Image.fromarray(grid), (width, 0))
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(names):
        y = top + r * row_height + row_height // 2 - font_size // 2 - 1
        draw.text((width - 8 - _text_width(font, name), y), name, fill=LABEL_COLOUR, font=font)
    return np.asarray(canvas)


def _text_width(font: ImageFont.ImageFont, text: str) -> int:
    box = font.getbbox(text)
    return int(box[2] - box[0])


def side_by_side(blocks: Sequence[tuple[str, np.ndarray, np.ndarray]], class_names: Sequence[str], *,
                 per_class: int | None = None, scale: int | None = None, classes: Sequence[int] | None = None,
                 gap: int = 18) -> np.ndarray:
    """Several sets of one dataset as one image, rows aligned by class, a title above each block."""
    chosen = list(classes) if classes is not None else list(range(len(class_names)))
    size = blocks[0][1].shape[1]
    widest = max(max((len(r) for r in class_rows(np.asarray(lab), len(class_names))), default=1)
                 for _, _, lab in blocks)
    per = min(widest, per_class) if per_class else widest
    scale = scale or display_scale(size, per * len(blocks), target_width=1100, rows=len(chosen), max_height=900)
    pad = 2
    grids = []
    for _, images, labels in blocks:
        rows = [class_rows(np.asarray(labels), len(class_names))[c] for c in chosen]
        g = make_grid(_rgb(images), rows, pad=pad, scale=scale, max_per_row=per)
        want = min(_text_width(_font(14), blocks[len(grids)][0]) + 8, 240)
        if g.shape[1] < want:  # a narrow block (IPC 1) still gets room for its title
            g = np.concatenate([g, np.full((g.shape[0], want - g.shape[1], 3), 255, np.uint8)], axis=1)
        grids.append(g)
    height = max(g.shape[0] for g in grids)
    header = 26
    font = _font(14)
    total_w = sum(g.shape[1] for g in grids) + gap * (len(grids) - 1)
    canvas = Image.new("RGB", (total_w, height + header), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for (title, _, _), g in zip(blocks, grids):
        canvas.paste(Image.fromarray(g), (x, header))
        shown = title
        while _text_width(font, shown) > g.shape[1] - 4 and len(shown) > 4:
            shown = shown[:-2].rstrip() + "…" if not shown.endswith("…") else shown[:-2] + "…"
        draw.text((x + 2, 5), shown, fill=LABEL_COLOUR, font=font)
        x += g.shape[1] + gap
    labelled = _with_row_labels(np.asarray(canvas)[header:], [class_names[c] for c in chosen],
                                row_height=(size + pad) * scale, top=pad * scale)
    out = Image.new("RGB", (labelled.shape[1], labelled.shape[0] + header), (255, 255, 255))
    out.paste(Image.fromarray(labelled), (0, header))
    out.paste(canvas.crop((0, 0, canvas.width, header)), (labelled.shape[1] - canvas.width, 0))
    return np.asarray(out)


def change_images(now: np.ndarray, start: np.ndarray, gain: float = 2.0) -> np.ndarray:
    """|now − start| per pixel (uint8 N×H×W×C, brightened by `gain`): where each image moved from where it began."""
    diff = np.abs(now.astype(np.int16) - start.astype(np.int16)).astype(np.float32) * gain
    return np.clip(diff, 0, 255).astype(np.uint8)


def moved_per_class(now: np.ndarray, start: np.ndarray, labels: np.ndarray, num_classes: int) -> list[float]:
    """Mean absolute change per pixel, in 0-255 grey levels, of each class's images since the start."""
    hard = labels.argmax(1) if labels.ndim == 2 else labels
    per_image = np.abs(now.astype(np.float32) - start.astype(np.float32)).reshape(len(now), -1).mean(1)
    return [float(per_image[hard == c].mean()) if (hard == c).any() else 0.0 for c in range(num_classes)]


def timelapse_gif(frames: Sequence[tuple[int, np.ndarray, np.ndarray]], class_names: Sequence[str], *,
                  frame_ms: int = 180, max_per_class: int = 10) -> bytes:
    """An animated GIF of stored snapshots (iteration, images, labels), each a labelled grid with its iteration
    written under it; the last frame is held a little longer so the loop reads as an ending."""
    pictures = []
    for iteration, images, labels in frames:
        grid = labelled_grid(images, labels, class_names, max_per_class=max_per_class)
        canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + 22), (255, 255, 255))
        canvas.paste(Image.fromarray(grid), (0, 0))
        ImageDraw.Draw(canvas).text((6, grid.shape[0] + 4), f"iteration {iteration:,}", fill=LABEL_COLOUR,
                                    font=_font(13))
        pictures.append(canvas.convert("P", palette=Image.ADAPTIVE, colors=128))
    if not pictures:
        raise ValueError("no snapshots to animate")
    import io

    buf = io.BytesIO()
    durations = [frame_ms] * (len(pictures) - 1) + [frame_ms * 8]
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return buf.getvalue()


def mosaic(images: np.ndarray, labels: np.ndarray, per_class: int = 4, max_images: int = 40) -> np.ndarray:
    """A compact, roughly square thumbnail: the first images of each class, class by class (RGB)."""
    rows = class_rows(np.asarray(labels), int(np.asarray(labels).max()) + 1 if len(labels) else 1)
    order = [i for r in rows for i in r[:per_class]][:max_images] or [0]
    cols = int(np.ceil(np.sqrt(len(order))))
    grid_rows = [order[k:k + cols] for k in range(0, len(order), cols)]
    scale = 2 if images.shape[1] <= 32 else 1
    return make_grid(_rgb(images), grid_rows, pad=1, scale=scale)


# Streamlit 1.67 gives a fixed-width image `max-width: 100%` but not its container, so a grid wider than its
# column overflowed it (onto the loss chart beside it). Style-only st.html takes no space on the page.
_FIT_IMAGES_CSS = "<style>[data-testid='stImageContainer'] { max-width: 100%; }</style>"


def show_image(image: np.ndarray | tuple[bytes, int], caption: str | None = None) -> None:
    """st.image at the grid's own pixel size (never blurred by stretching), scaled down to fit a narrower column.
    `image` is an array, or (PNG bytes, width) already encoded (app/live_cache shares those between sessions).

    (width="content" would also fit the column, but stretches a narrow grid to the width of its caption.)
    """
    st.html(_FIT_IMAGES_CSS)
    if isinstance(image, tuple):
        data, width = image
        st.image(data, caption=caption, width=int(width))
    else:
        data, width = encoded(image)
        st.image(data, caption=caption, width=width)


def encoded(image: np.ndarray, fast: bool = False) -> tuple[bytes, int]:
    """(PNG bytes, width) of a drawn image, for show_image. `fast`: light compression, for live frames that are
    replaced within a second (3x quicker to encode, a little larger on loopback)."""
    return stamped(png_bytes(image, 1 if fast else 6)), int(image.shape[1])


_SERVER_STAMP = b"ddstudio-server\0" + secrets.token_hex(8).encode()


def stamped(png: bytes) -> bytes:
    """PNG bytes with a text chunk naming this server process, so an image shown by the next server (after a
    restart) gets another media URL: Streamlit names media by content, and a page reconnecting to a new server kept
    an <img> whose unchanged URL had failed to load while the server was down (a broken image until reloaded)."""
    if not png.endswith(b"IEND\xaeB`\x82"):
        return png
    chunk = b"tEXt" + _SERVER_STAMP
    return png[:-12] + struct.pack(">I", len(_SERVER_STAMP)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[-12:]


def png_bytes(image: np.ndarray, compress_level: int = 6) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


# ---------------------------------------------------------------------- formatting
def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def fmt_about(seconds: float | None) -> str:
    """An estimate's duration without false precision: '40 s', '2 min 50 s', '24 min', '1 h 42 min'."""
    if seconds is None or not np.isfinite(seconds):
        return "—"
    if seconds < 59.5:
        return f"{max(1, round(seconds))} s"
    if seconds < 595:  # to 10 s
        minutes, rest = divmod(10 * round(seconds / 10), 60)
        return f"{minutes} min" + (f" {rest:02d} s" if rest else "")
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def counted(n: float, noun: str) -> str:
    """'1 set', '3 sets', '2 CPUs', '1 class order': a count with its noun in the right number (not 'set(s)')."""
    number = f"{n:g}" if isinstance(n, float) else f"{n:,}"
    return f"{number} {noun if n == 1 else noun + 's'}"


def fmt_when(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def fmt_accuracy(mean: float | None, std: float | None = None, seeds: int | None = None) -> str:
    """'91.2 ± 0.4 %', or '91.2 % (one network)' where one network was trained (its spread is unknown)."""
    if mean is None:
        return "—"
    if seeds == 1:
        return f"{mean:.1f} % (one network)"
    return f"{mean:.1f} %" if std is None else f"{mean:.1f} ± {std:.1f} %"


def spread(std: float | None, seeds: int | None) -> str | None:
    """How sure a mean is: '± s (std over n networks)', or 'one network' where a single network was trained."""
    if seeds == 1:
        return "one network"
    if std is None:
        return None
    return f"± {std:.1f} (std over {seeds} networks)" if seeds else f"± {std:.1f} (std over seeds)"


def status_badge(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '•')} {status}"


# ---------------------------------------------------------------------- st.* widgets
def loss_figure(metrics: Iterable[dict[str, Any]], height: int = 260):
    """A plotly loss curve (log scale when the loss spans decades)."""
    import plotly.graph_objects as go

    rows = [m for m in metrics if isinstance(m.get("loss"), (int, float)) and np.isfinite(m["loss"])]
    fig = go.Figure()
    xs = [m["iteration"] for m in rows]
    ys = [m["loss"] for m in rows]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if len(xs) < 40 else "lines", name="loss",
                             line=dict(color="#e4572e", width=2), marker=dict(size=4)))
    positive = [y for y in ys if y > 0]
    log = len(positive) == len(ys) and len(ys) > 2 and max(positive) / max(min(positive), 1e-12) > 30
    learned = [m for m in rows if isinstance(m.get("lr"), (int, float)) and np.isfinite(m["lr"])]
    if learned:  # trajectory matching learns the student's step size: on a second axis
        fig.add_trace(go.Scatter(x=[m["iteration"] for m in learned], y=[m["lr"] for m in learned], mode="lines",
                                 name="learned step size", yaxis="y2", line=dict(color="#3a86ff", width=1.5, dash="dot")))
        fig.update_layout(yaxis2=dict(title="learned step size", overlaying="y", side="right", showgrid=False,
                                      tickfont=dict(color="#3a86ff"), title_font=dict(color="#3a86ff")))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10),
                      title=dict(text="Loss and learned step size" if learned else "Loss", x=0.01, y=0.97),
                      xaxis_title="iteration", yaxis_type="log" if log else "linear", showlegend=False,
                      template="plotly_white")
    if log:  # full numbers between decades (plotly abbreviates 20 and 50 to "2" and "5", which read as nonsense)
        fig.update_yaxes(minorloglabels="complete", tickformat="~g")
    return fig


def sync_query(params: dict[str, Any]) -> None:
    """Write the view's choices to the URL (only what changed), so a link reproduces the view."""
    for key, value in params.items():
        text = None if value in (None, "", []) else (",".join(map(str, value)) if isinstance(value, (list, tuple))
                                                      else str(value))
        current = st.query_params.get(key)
        if text is None:
            if current is not None:
                del st.query_params[key]
        elif current != text:
            st.query_params[key] = text


def init_from_query(key: str, param: str, default: Any, parse: Callable[[str], Any] = str,
                    allowed: Sequence[Any] | None = None) -> None:
    """Seed a widget's session value from the URL on first render (bad values fall back to the default)."""
    if key in st.session_state:
        return
    raw = st.query_params.get(param)
    value = default
    if raw is not None:
        try:
            value = parse(raw)
        except (ValueError, TypeError):
            value = None
            ok = False
        else:
            ok = allowed is None or value in allowed
        if not ok:  # said, not silently replaced: the link's author meant something
            st.warning(f"This link's {plain(param)}={plain(repr(raw[:80]))} is not available here; showing "
                       f"{plain(default)} instead.")
            value = default
    st.session_state[key] = value


def custom_eval_preset(key_prefix: str, epochs: int = 20, test_images: int = 1000) -> str:
    """Epochs, test images and augmentation of a custom evaluation preset, as its self-describing name
    ('custom-e20-t1000-auto'); the Evaluate and Sweeps pages share it."""
    c1, c2, c3 = st.columns(3)
    epochs = int(c1.number_input("Epochs", 1, 2000, epochs, key=f"{key_prefix}_custom_epochs"))
    test_limit = int(c2.number_input("Test images (0: all)", 0, 100000, test_images, step=500,
                                     key=f"{key_prefix}_custom_test"))
    aug = c3.selectbox("Augmentation", ["none", "auto", "dsa", "dc"], key=f"{key_prefix}_custom_aug",
                       help="auto: DSA for DSA/DM/MTT sets, the DC paper's augmentation otherwise.")
    name = custom_preset(epochs, test_limit or None, aug)
    st.caption(f"Preset name `{name}`: each set's own training recipe (the DC paper's SGD; FRePo's Adam) with "
               "these values.")
    return name


def submit_job(studio: Any, spec: Any, failure: str = "Could not evaluate") -> None:
    """Queue a job from a button; what changed in another tab meanwhile (a set deleted, a run that went on) or
    settings the engine refuses are said, not raised."""
    try:
        studio.submit(spec)
    except (LookupError, ValueError, RuntimeError, OSError) as e:
        st.error(f"{failure}: {plain(str(e))}")
    else:
        st.rerun()


def jobs_panel(studio: Any, limit: int = 8) -> None:
    """The queue as every tab sees it: active jobs first, with their positions."""
    jobs = studio.jobs()
    mine = getattr(studio, "owner", None)
    active = sorted((j for j in jobs if j.active), key=lambda j: j.owner != mine or mine is None)  # yours first
    recent = [j for j in reversed(jobs) if not j.active][: max(0, limit - len(active))]
    if not jobs:
        st.caption("No jobs yet in this server session.")
        return
    for snap in active + recent:
        where = f" · #{snap.position} in queue" if snap.position else ""
        where += " · yours" if mine is not None and snap.owner == mine else ""
        pct = f" · {snap.progress:.0%}" if snap.status in ("running", "paused") and snap.total else ""
        name = plain(snap.name)  # a user's run name never becomes markup
        st.markdown(f"{STATUS_ICONS.get(snap.status, '•')} **{name}**  \n"
                    f"<span style='color:#6b7080;font-size:0.85em'>{snap.kind} · {snap.status}{where}{pct}</span>",
                    unsafe_allow_html=True)


def _retime(every_s: float) -> None:
    """Give the running fragment a new timer in this tab's browser. Streamlit sends this very message when a fragment
    with run_every is declared, and its frontend re-arms a fragment's timer when the interval changes (1.67); where
    those internals are missing, the fragment keeps the interval it was declared with."""
    try:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

        fragment_id = ThreadState.get().fragment_id
    except (ImportError, RuntimeError, AttributeError):
        return
    ctx = get_script_run_ctx()
    if ctx is None or not fragment_id:
        return
    msg = ForwardMsg()
    msg.auto_rerun.interval = every_s
    msg.auto_rerun.fragment_id = fragment_id
    ctx.enqueue(msg)


def polled(draw: Callable[[], None], every: float | None, shared_budget: bool = True) -> None:
    """Run `draw` as a fragment redrawn every `every` seconds (None: once), the way every live part of a page is.

    After a server restart the browser reconnects and its fragments keep polling the new server, but the rest of
    the page still shows the old server's media (images that no longer exist: broken until a full rerun). A
    fragment-only run in a session that has never had a full run is exactly that case, so it reruns the page.

    With `shared_budget` (the default) the interval is stretched to the server's audience (app/audience.py), and
    each run gives its tab's timer the current interval when it changed (`_retime`). The playground passes False:
    its frames are its own computation, at the rate its user chose."""
    timer_key = f"_timer_{draw.__qualname__}"

    def guarded() -> None:
        pin_this_thread("ui")  # a fragment rerun runs on a fresh thread that main.py's pin never reached
        ctx = get_script_run_ctx()
        if ctx is not None and ctx.fragment_ids_this_run:
            if not st.session_state.get("_full_run_seen"):
                st.rerun(scope="app")
        else:
            st.session_state["_full_run_seen"] = True
        if every is not None and shared_budget and ctx is not None:
            audience.seen(ctx.session_id, draw.__qualname__, every)
            wanted = audience.interval(every)
            if st.session_state.get(timer_key) != wanted:
                st.session_state[timer_key] = wanted
                _retime(wanted)
        draw()

    declared = every
    if every is not None and shared_budget:
        declared = audience.interval(every)
        st.session_state[timer_key] = declared
    st.fragment(run_every=declared)(guarded)()


def jobs_sidebar(studio: Any, every: float = 1.0) -> None:
    """'Jobs on this server' in the sidebar, re-drawn every `every` s while any job is active.

    Call it last on a page, so a job started in this script run is already listed and polled; an action that
    changes a job from inside a fragment (Cancel) calls st.rerun() so this panel is drawn again at once.
    """
    with st.sidebar:
        st.subheader("Jobs on this server")
        polled(lambda: jobs_panel(studio), every if studio.any_active() else None)


def study_progress(studio: Any, spec: Any, prefix: str, busy: bool, live_images: bool = False) -> None:
    """Where a study's job stands (privacy, continual, nas), polled every second while it works: the artefacts it
    waits for with their progress, then its own progress, ETA and stage, a Stop button, and optionally the live
    images of the distillation it runs. When it finishes, the page is drawn again once with the stored result."""
    flag = f"{prefix}_was_busy"

    def draw() -> None:
        now = studio.study_state(spec)
        job = now.job
        if job is None:
            return
        if not job.active:  # finished since the page was drawn: draw it all again once, with the stored study
            if st.session_state.get(flag):
                st.session_state[flag] = False
                st.rerun()
            if now.stored is not None:
                return
        if job.status == "queued" and job.waiting_for:
            for w in (studio.job(i) for i in job.waiting_for):
                if w is not None:
                    eta = f" · ETA {fmt_duration(w.eta_s)}" if w.eta_s is not None else ""
                    st.progress(w.progress, text=f"First: {plain(w.name)} (made once, then reused) · {w.progress:.0%}{eta}")
        elif job.status in ("running", "queued"):
            eta = f" · ETA {fmt_duration(job.eta_s)}" if job.eta_s is not None else ""
            st.progress(job.progress, text=f"{job.progress:.0%} · {fmt_duration(job.elapsed_s)} elapsed{eta} · "
                                           f"{plain(job.message) or 'starting…'}")
            if live_images and job.images is not None:
                grey = [im[..., 0] if im.ndim == 3 and im.shape[-1] == 1 else im for im in np.asarray(job.images)[:40]]
                st.image([stamped(png_bytes(g)) for g in grey], width=40)
                st.caption("Live: the distillation this study is running now.")
            if st.button("Stop", key=f"{prefix}_stop_{job.id}"):
                studio.stop(job.id)
                st.rerun()
        else:
            st.markdown(f"{status_badge(job.status)} {plain(job.message)}")
        st.session_state[flag] = job.active

    st.session_state[flag] = busy
    with st.container(key=f"{prefix}_progress"):
        polled(draw, 1.0 if busy else None)
