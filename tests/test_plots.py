"""helpers.report.figures: palette, style, saving, and the Kaplan-Meier figure with its risk table."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from helpers.report import figures as plots  # noqa: E402
from helpers.stats import survival as sv  # noqa: E402


@pytest.fixture
def patients() -> pd.DataFrame:
    rng = np.random.default_rng(20260115)
    n = {"CMT": 40, "CMT+ICI": 20}
    arm = np.repeat(list(n), list(n.values()))
    scale = np.where(arm == "CMT", 11.0, 20.0)
    latent = rng.exponential(scale)
    censor = rng.uniform(6, 40, size=len(arm))
    time = np.minimum(latent, censor)
    event = (latent <= censor).astype(int)
    return pd.DataFrame({"arm": pd.Categorical(arm, categories=list(n)),
                         "os_months": time, "os_event": event,
                         "pfs_months": time * 0.6, "pfs_event": event})


def test_arm_colours_are_okabe_ito_and_distinct():
    assert set(plots.ARM_COLOURS.values()) <= set(plots.OKABE_ITO.values())
    assert len(set(plots.ARM_COLOURS.values())) == len(plots.ARM_COLOURS)


def test_unknown_arms_get_further_okabe_ito_colours():
    assert plots.arm_colour("Other", 0) in plots.OKABE_ITO.values()
    assert plots.arm_colour("Other", 0) not in plots.ARM_COLOURS.values()


def test_apply_style_sets_a_readable_journal_font_size():
    with matplotlib.rc_context():
        plots.apply_style()
        assert 7 <= matplotlib.rcParams["font.size"] <= 9
        assert matplotlib.rcParams["savefig.dpi"] == 300


def test_save_figure_writes_png_at_300_dpi_and_vector_pdf_and_svg(tmp_path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    written = plots.save_figure(fig, "example", tmp_path)
    plt.close(fig)
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {"example.png", "example.pdf", "example.svg"}
    dpi = Image.open(written["png"]).info["dpi"]
    assert round(dpi[0]) == 300
    assert written["pdf"].read_bytes().startswith(b"%PDF")
    assert b"<svg" in written["svg"].read_bytes()


def test_saved_vector_files_are_byte_identical_between_runs(tmp_path):
    outputs = []
    for run in range(2):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        written = plots.save_figure(fig, "same", tmp_path / str(run))
        plt.close(fig)
        outputs.append({k: p.read_bytes() for k, p in written.items()})
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("name", ["", "a/b", "..\\x"])
def test_save_figure_rejects_names_that_are_not_plain_file_stems(tmp_path, name):
    fig = plt.figure()
    with pytest.raises(ValueError, match="file stem"):
        plots.save_figure(fig, name, tmp_path)
    plt.close(fig)


@pytest.mark.parametrize("endpoint", ["os", "pfs"])
def test_km_figure_has_curves_panel_and_risk_table_aligned_on_the_same_months(patients, endpoint):
    fig = plots.plot_km(patients, endpoint)
    ax, table = fig.axes
    assert ax.get_xlim() == table.get_xlim()
    ticks = [t for t in ax.get_xticks() if t <= ax.get_xlim()[1]]
    assert np.allclose(np.diff(ticks), 6)
    assert "Months" in ax.get_xlabel()
    plt.close(fig)


def test_km_risk_table_shows_numbers_at_risk_and_cumulative_events_per_arm(patients):
    fig = plots.plot_km(patients, "os")
    table = fig.axes[1]
    shown = [t.get_text() for t in table.texts]
    assert "Number at risk" in shown and "Cumulative events" in shown
    ticks = [t for t in fig.axes[0].get_xticks() if t <= fig.axes[0].get_xlim()[1]]
    for arm in ("CMT", "CMT+ICI"):
        sub = patients[patients["arm"] == arm]
        counts = sv.number_at_risk(sub["os_months"], sub["os_event"], ticks)
        row = [t.get_text() for t in table.texts
               if t.get_color() == plots.ARM_COLOURS[arm] and t.get_text().isdigit()]
        assert row == [str(v) for v in counts["n_risk"]] + [str(v) for v in counts["cum_events"]]
    plt.close(fig)


def test_km_figure_annotates_log_rank_p_and_hazard_ratio(patients):
    fig = plots.plot_km(patients, "os")
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    res = sv.survival_results(patients, "os")
    assert "Log-rank P" in text
    assert f"HR {res['hr']['estimate']:.2f}" in text
    plt.close(fig)


def test_km_legend_reports_each_arms_median(patients):
    fig = plots.plot_km(patients, "os")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    res = sv.survival_results(patients, "os")
    for arm, label in zip(["CMT", "CMT+ICI"], labels):
        med = res["median"][arm]["estimate"]
        assert label.startswith(arm) and (f"{med:.1f}" in label if med is not None else "NR" in label)
    plt.close(fig)


def test_plotting_does_not_change_global_matplotlib_style(patients):
    before = matplotlib.rcParams["font.size"]
    plt.close(plots.plot_km(patients, "pfs"))
    assert matplotlib.rcParams["font.size"] == before
