"""Figure theme shared by every notebook: seaborn theme, arm colours and line styles, saving in three formats.

seaborn sets the theme (:func:`apply_style`, :func:`style_context`: the "paper" context and "ticks" style,
with the project's palette and journal sizes on top). Colours are from the Okabe-Ito palette (Okabe and
Ito 2008, "Color Universal Design"), which stays distinguishable under the common colour-vision
deficiencies; the two arms differ in colour AND line style, so they stay apart in greyscale print.
Arms are styled by POSITION (the reference arm first, the experimental arm second), never by code, and
labelled with the labels of ``study.yaml``. The style is sized for a single journal column (about 85 mm).
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

#: The eight Okabe-Ito colours, by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: The project's palette, in the order series take it (reference arm, experimental arm, others).
PALETTE = [OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "orange", "reddish_purple",
                                  "sky_blue", "yellow", "black")]

#: Arm roles by position: the first arm of study.yaml is the reference, the second the experimental arm.
ARM_ROLES = ("reference", "experimental")

#: One colour per arm role (blue for the reference arm, vermillion for the experimental arm).
ARM_COLOURS = {"reference": OKABE_ITO["blue"], "experimental": OKABE_ITO["vermillion"]}

#: Line style per arm role, so the arms differ in greyscale print too.
ARM_LINESTYLES = {"reference": "-", "experimental": (0, (4, 1.5))}

#: Single journal column width in inches (85 mm), a 1.5-column width (120 mm) and the double column
#: (170 mm), the widest a figure is made: figures are drawn at the size they are printed, so the type
#: sizes below are the printed sizes.
COLUMN_WIDTH_IN = 85 / 25.4
WIDE_WIDTH_IN = 120 / 25.4
DOUBLE_WIDTH_IN = 170 / 25.4

#: A scatter layer with more points than this is drawn as one image (at the figure's 300 dpi) inside the
#: vector figure: tens of thousands of residuals of a registry cohort would otherwise make an SVG of
#: hundreds of megabytes that Typst and browsers refuse; axes, text and lines stay vector.
RASTER_POINTS_ABOVE = 2000
#: The most points a scatter layer shows: beyond it, every k-th point in the order given (time order for
#: residuals) is drawn, and the figure says so; statistics drawn over the points (smoothers, bands) use all.
SCATTER_POINTS_MAX = 2000


def thin_for_display(n: int, most: int = SCATTER_POINTS_MAX) -> tuple[np.ndarray, int]:
    """(indices of the points drawn, step k): all ``n`` points when ``n <= most``, else every k-th one with
    k = ceil(n / most). Deterministic (no sampling), so two builds draw the same figure."""
    step = max(1, int(np.ceil(n / most))) if n > most else 1
    return np.arange(0, n, step), step

#: The type scheme of every figure, in points: text and axis labels 8, titles 8.5, tick labels, legends
#: and text set like a table inside a figure (risk tables, forest-plot columns, bar labels, notes) 7.
#: Nothing is set below 7 pt or above 9 pt.
FONT_PT = 8
FONT_SMALL_PT = 7

#: Formats written by :func:`save_figure`.
FIGURE_FORMATS = ("png", "pdf", "svg")

_STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": FONT_PT,
    "axes.titlesize": 8.5,
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_SMALL_PT,
    "ytick.labelsize": FONT_SMALL_PT,
    "legend.fontsize": FONT_SMALL_PT,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "lines.linewidth": 1.2,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,   # embed TrueType, text stays editable in Illustrator/Inkscape
    "svg.fonttype": "none",
    "svg.hashsalt": "supplement",  # stable element ids, so SVG bytes do not change between runs
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
}


_SPARE = [OKABE_ITO[k] for k in ("bluish_green", "orange", "reddish_purple", "sky_blue", "black")]


def _position(arm, index: int | None) -> int | None:
    if arm in ARM_ROLES:
        return ARM_ROLES.index(arm)
    return index


def arm_colour(arm: str | int, index: int | None = None) -> str:
    """Colour of an arm by POSITION: ``arm`` a role ("reference", "experimental") or a position (0, 1),
    or any name with its ``index`` in the study's arm order (0 = reference). Positions beyond the two
    arms take further Okabe-Ito colours. A name without an index raises ValueError (never by code).
    """
    pos = arm if isinstance(arm, int) else _position(arm, index)
    if pos is None:
        raise ValueError(f"arm colours are set by position: pass the index of {arm!r} in the arm order "
                         "(0 = reference) or its role")
    if pos < len(ARM_ROLES):
        return ARM_COLOURS[ARM_ROLES[pos]]
    return _SPARE[(pos - len(ARM_ROLES)) % len(_SPARE)]


def arm_linestyle(arm: str | int, index: int | None = None):
    """Line style of an arm by position (as :func:`arm_colour`): solid reference, dashed experimental."""
    pos = arm if isinstance(arm, int) else _position(arm, index)
    if pos is None or pos >= len(ARM_ROLES):
        return ":"
    return ARM_LINESTYLES[ARM_ROLES[pos]]


#: Bar hatching per arm role, so bars of the arms differ in greyscale print too (as the line styles).
ARM_HATCHES = {"reference": "", "experimental": "////"}


def arm_hatch(arm: str | int, index: int | None = None) -> str:
    """Hatching of an arm's bars by position (as :func:`arm_colour`): plain reference, hatched experimental."""
    pos = arm if isinstance(arm, int) else _position(arm, index)
    if pos is None or pos >= len(ARM_ROLES):
        return "...."
    return ARM_HATCHES[ARM_ROLES[pos]]


def arm_style(position: int) -> dict:
    """Keyword arguments for ``ax.plot``/``ax.step`` of the arm at ``position`` (0 = reference)."""
    return {"color": arm_colour(position), "linestyle": arm_linestyle(position)}


def theme_rc() -> dict:
    """The rcParams of the theme: seaborn's "ticks" style and "paper" context, then the journal style."""
    rc = {}
    rc.update(sns.axes_style("ticks"))
    rc.update(sns.plotting_context("paper"))
    rc.update(_STYLE)
    return rc


def apply_style() -> None:
    """Set the theme globally: ``sns.set_theme`` (paper context, ticks style, project palette, journal sizes)."""
    sns.set_theme(context="paper", style="ticks", palette=PALETTE, rc=_STYLE)


def style_context():
    """The theme as a context manager, for figures that must not change global state."""
    return mpl.rc_context(theme_rc())


def _default_output_dir() -> Path:
    try:
        from helpers.config import output_dir
    except ImportError as exc:  # pragma: no cover - the spine provides it
        raise ValueError("pass output_dir explicitly: helpers.config is not available") from exc
    return output_dir()


def save_figure(fig, name: str, output_dir: str | Path | None = None,
                formats: tuple[str, ...] = FIGURE_FORMATS) -> dict[str, Path]:
    """Write ``fig`` to ``<output_dir>/figures/<name>.{png,pdf,svg}`` (PNG at 300 dpi).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        File stem, e.g. ``"km-os"``.
    output_dir : path, optional
        Defaults to ``helpers.config.output_dir()`` (``$SUPPLEMENT_OUTPUT`` or ``_output/``).

    Returns
    -------
    dict
        Format -> written path. The figure is neither shown nor closed.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"figure name must be a plain file stem, got {name!r}")
    folder = Path(output_dir) if output_dir is not None else _default_output_dir()
    folder = folder / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written, rendered = {}, {}
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        kwargs = {"dpi": 300} if fmt == "png" else {}
        # Fixed metadata keeps PDF/SVG bytes identical between runs.
        metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
                    "svg": {"Date": None}}.get(fmt)
        buffer = io.BytesIO()
        with mpl.rc_context({"svg.hashsalt": "supplement", "svg.fonttype": "none", "pdf.fonttype": 42}):
            fig.savefig(buffer, format=fmt, metadata=metadata, bbox_inches="tight", pad_inches=0.03, **kwargs)
        path.write_bytes(buffer.getvalue())
        rendered[fmt] = buffer.getvalue()
        written[fmt] = path
    # The notebook shows the figure next: it reuses these renderings (the same 300-dpi PNG and SVG) unless
    # the figure changes in between (any change marks it stale again; see _display_figure).
    fig._supplement_rendered = rendered
    fig.stale = False
    return written


# ----------------------------------------------------------------------------------------------
# Kaplan-Meier figure with a risk table
# ----------------------------------------------------------------------------------------------
#: Most columns of the risk table (x-axis breaks) that fit a journal column; wider spacing beyond.
MAX_BREAKS = 11


def _break_grid(t_max: float, break_months: float, max_breaks: int = MAX_BREAKS) -> list[float]:
    """Breaks 0, s, 2s, ... up to ``t_max`` rounded up; s = ``break_months``, doubled until at most
    ``max_breaks`` + 1 breaks remain (a long follow-up keeps the risk table legible)."""
    import math

    step = break_months
    while True:
        last = step * max(1, math.ceil(t_max / step - 1e-9))
        n = int(round(last / step))
        if n <= max_breaks:
            return [i * step for i in range(n + 1)]
        step *= 2


def fit_to_width(fig, pad_in: float = 0.03, rounds: int = 3) -> None:
    """Narrow the subplots so that everything drawn (labels left of the axes, a legend above them) lies
    inside the figure's width: saved with a tight bounding box, the figure then prints at the width it
    was made (a journal column), not wider, and its type at the scheme's sizes."""
    width = fig.get_figwidth()
    for _ in range(rounds):
        tight = fig.get_tightbbox()
        over_left = max(0.0, -tight.x0 + pad_in)
        over_right = max(0.0, tight.x1 - width + pad_in)
        if over_left < 0.005 and over_right < 0.005:
            return
        sp = fig.subplotpars
        fig.subplots_adjust(left=min(sp.left + over_left / width, 0.45),
                            right=max(sp.right - over_right / width, 0.55))


def draw_risk_table(tab, sections, breaks, n_rows: int, note: str | None = None, fmt=None) -> None:
    """Draw a survminer-style risk table on ``tab`` (an axes sharing the x axis of the curves above).

    ``sections``: [(heading, [(row label, colour, values at each break), ...]), ...], one bold heading
    row then one row per arm; ``n_rows`` the rows of the table (headings + arms + the note line);
    ``note``: an italic line (or a list of lines) under the table (e.g. where a truncated axis ends); ``fmt``: value -> text
    (default: the integer). Used by :func:`plot_km` and the weighted Kaplan-Meier figure.
    """
    fmt = fmt or (lambda v: str(int(v)))
    x_right = breaks[-1]
    tab.set_ylim(n_rows - 0.5, -0.7)
    for side in ("top", "right", "left", "bottom"):
        tab.spines[side].set_visible(False)
    tab.tick_params(axis="both", length=0, labelbottom=False, labelleft=False)
    row = 0
    # arm labels end just left of the first column, whose centred numbers may be wide (a registry: 69048):
    # the numbers are drawn first and measured, and the labels offset from x = 0 in points, so that the gap
    # holds whatever the final layout of the figure
    from matplotlib.transforms import offset_copy
    labels, widest = [], 0.0
    renderer = tab.figure.canvas.get_renderer()
    for heading, rows in sections:
        tab.text(0, row, heading, ha="left", va="center", fontsize=FONT_SMALL_PT, fontweight="bold")
        row += 1
        for label, colour, values in rows:
            labels.append((row, label, colour))
            for k, (b, v) in enumerate(zip(breaks, values)):
                text = tab.text(b, row, fmt(v), ha="center", va="center", fontsize=FONT_SMALL_PT, color=colour)
                if k == 0:
                    widest = max(widest, text.get_window_extent(renderer).width * 72 / tab.figure.dpi)
            row += 1
    shift = max(widest / 2 + 2.5, 9.0)
    label_transform = offset_copy(tab.transData, fig=tab.figure, x=-shift, y=0, units="points")
    for at, label, colour in labels:
        tab.text(0, at, label, ha="right", va="center", fontsize=FONT_SMALL_PT, color=colour,
                 transform=label_transform)
    for line in ([note] if isinstance(note, str) else note or []):
        tab.text(0, row, line, ha="left", va="center", fontsize=FONT_SMALL_PT, style="italic", color="0.3")
        row += 1


def plot_km(study, result, break_months: float = 6, xmax: float | None = None, show_ci: bool = True,
            show_median: bool = True, show_stats: bool = True, title: str | None = None,
            figsize: tuple[float, float] | None = None):
    """Kaplan-Meier curves per arm with pointwise CI bands and an aligned risk table (survminer style).

    Parameters
    ----------
    study : helpers.data.load.Study
        Its patients (``arm``, ``<endpoint>_months``, ``<endpoint>_event``) and arm labels.
    result : helpers.analyses.survival.EndpointResult
        The analysed endpoint (:func:`helpers.analyses.survival.analyse_endpoint`): arms, CI transform,
        medians, log-rank test and hazard ratio shown on the figure.
    break_months : spacing of the x-axis breaks and of the risk-table columns, in months (doubled while
        there would be more than :data:`MAX_BREAKS` columns).
    xmax : right end of the x axis in months (default: the last follow-up time, rounded up to a break).
        When the axis ends before the last follow-up time, a line under the risk table says so (where it
        ends, how far follow-up continues and how many patients lie beyond it).

    Returns
    -------
    matplotlib.figure.Figure
        Upper panel: step curves (reference arm solid blue, experimental arm dashed vermillion), shaded
        CI bands, censor ticks, dashed median lines, log-rank P and the hazard ratio (CI) of the
        experimental vs the reference arm. Lower panel: number at risk and cumulative number of events per
        arm at each break. Curves from :func:`helpers.stats.survival.fit_km`. Not shown; save with
        :func:`save_figure`.
    """
    import numpy as np
    from matplotlib.ticker import FixedLocator, PercentFormatter

    from helpers.report.formatting import format_count, format_estimate, format_number, format_p_statement
    from helpers.report.survival import ENDPOINT_LABELS, arm_labels
    from helpers.stats import survival as sv
    from helpers.stats.types import NotEstimable

    arms = [a.arm for a in result.arms]
    labels = arm_labels(study, result)
    data = sv.split_by_arm(study.patients, result.endpoint, arms)
    t_all = np.concatenate([data[a][0] for a in arms])
    breaks = _break_grid(xmax if xmax is not None else float(t_all.max()), break_months)
    x_right = breaks[-1]
    # an axis that ends before the last follow-up says so under the risk table (and in the caption text
    # helpers.report.survival.axis_note)
    truncated = bool(len(t_all)) and float(t_all.max()) > x_right
    n_beyond = int((t_all > x_right).sum())

    with style_context():
        n_rows = 2 * len(arms) + 2 + (2 if truncated else 0)
        fig = plt.figure(figsize=figsize or (COLUMN_WIDTH_IN, 2.45 + 0.16 * n_rows))
        gs = fig.add_gridspec(2, 1, height_ratios=[2.3, 0.16 * n_rows], hspace=0.33)
        ax = fig.add_subplot(gs[0])
        tab = fig.add_subplot(gs[1], sharex=ax)

        handles = []
        for i, arm in enumerate(result.arms):
            style = arm_style(i)
            t, e = data[arm.arm]
            steps = sv.km_steps(t, e, conf_type=result.conf_type, conf_level=result.conf_level)
            x = steps["time"].to_numpy(float)
            line, = ax.step(x, steps["surv"].to_numpy(float), where="post", lw=1.1, zorder=3,
                            label=labels[arm.arm], **style)
            if show_ci:
                lo, hi = steps["lower"].to_numpy(float), steps["upper"].to_numpy(float)
                ok = np.isfinite(lo) & np.isfinite(hi)
                ax.fill_between(x[ok], lo[ok], hi[ok], step="post", color=style["color"], alpha=0.14, lw=0,
                                zorder=1)
            cens = steps[steps["n_censor"] > 0]
            ax.plot(cens["time"], cens["surv"], ls="none", marker="|", ms=4.5, mew=0.9, color=style["color"],
                    zorder=4)
            handles.append((line, labels[arm.arm], arm.median.value))

        medians = [m for _, _, m in handles if np.isfinite(m)]
        if show_median and medians:
            ax.plot([0, max(medians)], [0.5, 0.5], ls=(0, (3, 2)), lw=0.7, color="0.35", zorder=2)
            for i, (_, _, m) in enumerate(handles):
                if np.isfinite(m):
                    ax.plot([m] * 2, [0, 0.5], ls=(0, (3, 2)), lw=0.7, color=arm_colour(i), zorder=2)

        legend = [f"{name}  (median {format_number(m)} mo)" if np.isfinite(m) else f"{name}  (median NR)"
                  for _, name, m in handles]
        ncol = len(arms) if sum(len(text) for text in legend) <= 40 else 1    # long labels: one per line
        ax.legend([h for h, _, _ in handles], legend, loc="lower left", bbox_to_anchor=(-0.02, 1.0),
                  ncol=ncol, handlelength=2.2, columnspacing=1.2, borderaxespad=0.2, fontsize=FONT_SMALL_PT)
        if show_stats:
            lines = []
            if not isinstance(result.logrank, NotEstimable):
                lines.append("Log-rank " + format_p_statement(result.logrank.p))
            hr = result.hazard_ratio
            if not isinstance(hr, NotEstimable):
                lines.append("HR " + format_estimate(hr.estimate, digits=2))
                ph = getattr(result, "ph_test", None)
                if ph is not None and not isinstance(ph, NotEstimable):
                    lines.append("PH test " + format_p_statement(ph.p))
                lines.append(f"{labels[result.experimental]} vs {labels[result.reference]}")
            ax.text(0.99, 0.98, "\n".join(lines), transform=ax.transAxes, ha="right", va="top",
                    fontsize=FONT_SMALL_PT, linespacing=1.3)

        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, x_right * 1.01)
        ax.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel(f"{ENDPOINT_LABELS[result.endpoint]} (%)")
        ax.xaxis.set_major_locator(FixedLocator(breaks))
        ax.set_xlabel("Months since start of treatment")
        if title:
            ax.set_title(title, loc="left", fontweight="bold")

        # ---- risk table: number at risk, then cumulative events, one row per arm
        sections = []
        for heading, column in [("Number at risk", "n_risk"), ("Cumulative events", "cum_events")]:
            sections.append((heading, [(labels[arm], arm_colour(i), sv.number_at_risk(*data[arm], breaks)[column])
                                       for i, arm in enumerate(arms)]))
        note = None
        if truncated:
            note = [f"Axis ends at {x_right:g} months; follow-up to {format_number(float(t_all.max()))} months",
                    f"({format_count(n_beyond)} patient{'s' if n_beyond != 1 else ''} beyond)."]
        draw_risk_table(tab, sections, breaks, n_rows, note=note)
        fig.align_ylabels([ax])
        fit_to_width(fig)
    # Detached from pyplot: a notebook shows it once (as the cell's value) and no figure piles up.
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------------------------
# Notebook display: vector and 300-dpi raster
# ----------------------------------------------------------------------------------------------
def enable_notebook_formats() -> bool:
    """In a Jupyter kernel, show figures as SVG (vector: the PDF and HTML use it) and as PNG at
    300 dpi (the Word document uses it). Returns whether a kernel was found."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    set_matplotlib_formats("png", "svg", dpi=300)
    mpl.rcParams["svg.fonttype"] = "none"
    mpl.rcParams["svg.hashsalt"] = "supplement"
    from functools import partial

    from matplotlib.figure import Figure
    formatters = shell.display_formatter.formatters
    formatters["image/png"].for_type(Figure, partial(_display_figure, fmt="png"))
    formatters["image/svg+xml"].for_type(Figure, partial(_display_figure, fmt="svg"))
    return True


def _display_figure(fig, fmt: str):
    """The notebook's PNG (base64) or SVG of ``fig``: what :func:`save_figure` rendered when the figure has
    not changed since (each figure is then drawn three times per build, not five), else a new rendering
    as the inline backend makes it (300 dpi, tight bounding box)."""
    from binascii import b2a_base64

    from IPython.core.pylabtools import print_figure
    cached = getattr(fig, "_supplement_rendered", {}).get(fmt)
    if cached is None or fig.stale:
        return print_figure(fig, fmt=fmt, base64=True, dpi=300)
    return cached.decode("utf-8") if fmt == "svg" else b2a_base64(cached, newline=False).decode("ascii")


enable_notebook_formats()
