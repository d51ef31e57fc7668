"""Figure style shared by every notebook: arm colours, journal style, and saving in three formats.

Colours are from the Okabe-Ito palette (Okabe and Ito 2008, "Color Universal Design"), which stays
distinguishable under the common colour-vision deficiencies and in greyscale print when paired with
distinct line styles. The style is sized for a single journal column (about 85 mm wide).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt

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

#: One colour per arm (blue for the reference arm, vermillion for the experimental arm).
ARM_COLOURS = {
    "CMT": OKABE_ITO["blue"],
    "CMT+ICI": OKABE_ITO["vermillion"],
}

#: Line style per arm, so the arms differ in greyscale print too.
ARM_LINESTYLES = {"CMT": "-", "CMT+ICI": "-"}

#: Single journal column width in inches (85 mm) and a 1.5-column width (120 mm).
COLUMN_WIDTH_IN = 85 / 25.4
WIDE_WIDTH_IN = 120 / 25.4

#: Formats written by :func:`save_figure`.
FIGURE_FORMATS = ("png", "pdf", "svg")

_STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
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
    "axes.prop_cycle": mpl.cycler(color=[OKABE_ITO[k] for k in
                                         ("blue", "vermillion", "bluish_green", "orange",
                                          "reddish_purple", "sky_blue", "yellow", "black")]),
}


def arm_colour(arm: str, index: int = 0) -> str:
    """Colour of ``arm``; arms outside :data:`ARM_COLOURS` take Okabe-Ito colours in order."""
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    spare = [OKABE_ITO[k] for k in ("bluish_green", "orange", "reddish_purple", "sky_blue", "black")]
    return spare[index % len(spare)]


def apply_style() -> None:
    """Set the journal style (8 pt sans-serif, no top/right spines, 300 dpi export) globally."""
    mpl.rcParams.update(_STYLE)


def style_context():
    """The journal style as a context manager, for figures that must not change global state."""
    return mpl.rc_context(_STYLE)


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
    written = {}
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        kwargs = {"dpi": 300} if fmt == "png" else {}
        # Fixed metadata keeps PDF/SVG bytes identical between runs.
        metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
                    "svg": {"Date": None}}.get(fmt)
        with mpl.rc_context({"svg.hashsalt": "supplement", "svg.fonttype": "none", "pdf.fonttype": 42}):
            fig.savefig(path, format=fmt, metadata=metadata, bbox_inches="tight", pad_inches=0.03, **kwargs)
        written[fmt] = path
    return written


# ----------------------------------------------------------------------------------------------
# Kaplan-Meier figure with a risk table
# ----------------------------------------------------------------------------------------------
def _break_grid(t_max: float, break_months: float) -> list[float]:
    import math

    last = break_months * max(1, math.ceil(t_max / break_months - 1e-9))
    n = int(round(last / break_months))
    return [i * break_months for i in range(n + 1)]


def plot_km(patients, endpoint: str, conf_type: str = "log", break_months: float = 6,
            xmax: float | None = None, show_ci: bool = True, show_median: bool = True,
            show_stats: bool = True, title: str | None = None, figsize: tuple[float, float] | None = None):
    """Kaplan-Meier curves per arm with 95% CI bands and an aligned risk table (survminer style).

    Parameters
    ----------
    patients : DataFrame
        ``arm`` (Categorical; first level = reference), ``<endpoint>_months``, ``<endpoint>_event``.
    endpoint : {"os", "pfs"}
    conf_type : {"log", "log-log"}
        Pointwise band (R ``survfit`` default "log", Greenwood variance); see :mod:`helpers.stats.survival`.
    break_months : spacing of the x-axis breaks and of the risk-table columns, in months.
    xmax : right end of the x axis in months (default: the last follow-up time, rounded up to a break).

    Returns
    -------
    matplotlib.figure.Figure
        Upper panel: step curves, shaded CI bands, censor ticks, dashed median lines, log-rank P and
        HR (95% CI) of the second arm vs the first. Lower panel: number at risk and cumulative number
        of events per arm at each break. Not shown; save with :func:`save_figure`.
    """
    import numpy as np
    from matplotlib.ticker import FixedLocator, PercentFormatter

    from helpers.stats import survival as sv
    from helpers.report.formatting import RANGE_SEP, format_number, format_p

    ep, levels, data = sv._arm_data(patients, endpoint)
    res_lr = sv.logrank_test(np.concatenate([data[a][0] for a in levels]),
                             np.concatenate([data[a][1] for a in levels]),
                             np.concatenate([[a] * len(data[a][0]) for a in levels])) if len(levels) > 1 else None
    hr = None
    if len(levels) == 2:
        hr = sv.fit_cox_arm(np.concatenate([data[a][0] for a in levels]),
                            np.concatenate([data[a][1] for a in levels]),
                            np.concatenate([[a] * len(data[a][0]) for a in levels]), reference=levels[0])

    t_all = np.concatenate([data[a][0] for a in levels])
    breaks = _break_grid(xmax if xmax is not None else float(t_all.max()), break_months)
    x_right = breaks[-1]

    with style_context():
        n_rows = 2 * len(levels) + 2
        fig = plt.figure(figsize=figsize or (COLUMN_WIDTH_IN, 2.45 + 0.16 * n_rows))
        gs = fig.add_gridspec(2, 1, height_ratios=[2.3, 0.16 * n_rows], hspace=0.33)
        ax = fig.add_subplot(gs[0])
        tab = fig.add_subplot(gs[1], sharex=ax)

        handles = []
        medians = {}
        for i, arm in enumerate(levels):
            colour = arm_colour(arm, i)
            t, e = data[arm]
            curve = sv.fit_km(t, e, conf_type=conf_type)
            x = np.concatenate([[0.0], curve["time"].to_numpy(float)])
            s = np.concatenate([[1.0], curve["surv"].to_numpy(float)])
            lo = np.concatenate([[1.0], curve["lower"].to_numpy(float)])
            hi = np.concatenate([[1.0], curve["upper"].to_numpy(float)])
            # extend the last step to the last observation time (already the last knot)
            line, = ax.step(x, s, where="post", color=colour, lw=1.1, label=arm, zorder=3)
            if show_ci:
                ok = np.isfinite(lo) & np.isfinite(hi)
                ax.fill_between(x[ok], lo[ok], hi[ok], step="post", color=colour, alpha=0.14, lw=0, zorder=1)
            cens = curve[curve["n_censor"] > 0]
            ax.plot(cens["time"], cens["surv"], ls="none", marker="|", ms=4.5, mew=0.9, color=colour, zorder=4)
            m = sv.median_survival(t, e, conf_type=conf_type)
            medians[arm] = m["estimate"]
            handles.append((line, arm, m["estimate"]))

        if show_median:
            reached = [v for v in medians.values() if v is not None]
            if reached:
                ax.plot([0, max(reached)], [0.5, 0.5], ls=(0, (3, 2)), lw=0.7, color="0.35", zorder=2)
            for i, arm in enumerate(levels):
                if medians[arm] is not None:
                    ax.plot([medians[arm]] * 2, [0, 0.5], ls=(0, (3, 2)), lw=0.7,
                            color=arm_colour(arm, i), zorder=2)

        labels = [f"{arm}  (median {format_number(med)} mo)" if med is not None else f"{arm}  (median NR)"
                  for _, arm, med in handles]
        ax.legend([h for h, _, _ in handles], labels, loc="lower left", bbox_to_anchor=(-0.02, 1.0),
                  ncol=len(levels), handlelength=1.5, columnspacing=1.2, borderaxespad=0.2,
                  fontsize=6.5)
        if show_stats and res_lr is not None:
            lines = [f"Log-rank P {'= ' if not format_p(res_lr['p']).startswith('<') else ''}"
                     f"{format_p(res_lr['p'])}".replace("P <", "P < ")]
            if hr is not None and hr["estimate"] is not None:
                lines.append(f"HR {hr['estimate']:.2f} (95% CI {hr['lower']:.2f}{RANGE_SEP}{hr['upper']:.2f})")
                lines.append(f"{levels[1]} vs {levels[0]}")
            ax.text(0.99, 0.98, "\n".join(lines), transform=ax.transAxes, ha="right", va="top",
                    fontsize=6.5, linespacing=1.3)

        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, x_right * 1.01)
        ax.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel(f"{ep.label} (%)")
        ax.xaxis.set_major_locator(FixedLocator(breaks))
        ax.set_xlabel(f"Months since start of first-line treatment")
        if title:
            ax.set_title(title, loc="left", fontweight="bold")

        # ---- risk table: number at risk, then cumulative events, one row per arm
        tab.set_ylim(n_rows - 0.5, -0.7)
        for side in ("top", "right", "left", "bottom"):
            tab.spines[side].set_visible(False)
        tab.tick_params(axis="both", length=0, labelbottom=False, labelleft=False)
        blocks = [("Number at risk", "n_risk"), ("Cumulative events", "cum_events")]
        row = 0
        label_x = -0.045 * x_right        # arm labels end just left of the first column
        for heading, column in blocks:
            tab.text(0, row, heading, ha="left", va="center", fontsize=6.5, fontweight="bold")
            row += 1
            for i, arm in enumerate(levels):
                colour = arm_colour(arm, i)
                counts = sv.number_at_risk(*data[arm], breaks)
                tab.text(label_x, row, arm, ha="right", va="center", fontsize=6.5, color=colour)
                for b, n in zip(breaks, counts[column]):
                    tab.text(b, row, str(int(n)), ha="center", va="center", fontsize=6.5, color=colour)
                row += 1
        fig.align_ylabels([ax])
    # Detached from pyplot: a notebook shows it once (as the cell's value) and no figure piles up.
    plt.close(fig)
    return fig
