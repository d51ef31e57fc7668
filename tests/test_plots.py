"""helpers.report.figures: palette, style, saving, and the Kaplan-Meier figure with its risk table."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from types import SimpleNamespace  # noqa: E402

import yaml  # noqa: E402

from helpers.analyses.survival import analyse_endpoint  # noqa: E402
from helpers.config import PROJECT_ROOT  # noqa: E402
from helpers.report import figures as plots  # noqa: E402
from helpers.stats import survival as sv  # noqa: E402

PLAN = yaml.safe_load((PROJECT_ROOT / "analysis.yaml").read_text(encoding="utf-8"))["survival"]
LABELS = {"A": "Arm one", "B": "Arm two"}


@pytest.fixture
def patients() -> pd.DataFrame:
    rng = np.random.default_rng(20260115)
    n = {"A": 40, "B": 20}
    arm = np.repeat(list(n), list(n.values()))
    scale = np.where(arm == "A", 11.0, 20.0)
    latent = rng.exponential(scale)
    censor = rng.uniform(6, 40, size=len(arm))
    time = np.minimum(latent, censor)
    event = (latent <= censor).astype(int)
    return pd.DataFrame({"arm": pd.Categorical(arm, categories=list(n)),
                         "os_months": time, "os_event": event,
                         "pfs_months": time * 0.6, "pfs_event": event})


@pytest.fixture
def study(patients):
    config = SimpleNamespace(arm_order=("A", "B"), reference_arm="A", design="randomised",
                             arm_label=lambda code: LABELS[code])
    return SimpleNamespace(patients=patients, config=config, has=lambda part: True)


def _plot(study, endpoint="os", **kwargs):
    result = analyse_endpoint(study, endpoint, PLAN)
    return plots.plot_km(study, result, **kwargs), result


def test_arm_colours_are_okabe_ito_distinct_and_set_by_position_not_by_code():
    assert set(plots.ARM_COLOURS) == {"reference", "experimental"}
    assert set(plots.ARM_COLOURS.values()) <= set(plots.OKABE_ITO.values())
    assert len(set(plots.ARM_COLOURS.values())) == 2
    assert plots.arm_colour(0) == plots.arm_colour("anything", 0) == plots.ARM_COLOURS["reference"]
    assert plots.arm_colour(1) == plots.arm_colour("experimental") == plots.ARM_COLOURS["experimental"]


def test_the_two_arms_differ_in_line_style_too():
    assert plots.arm_style(0)["linestyle"] != plots.arm_style(1)["linestyle"]


def test_further_arms_get_further_okabe_ito_colours():
    assert plots.arm_colour("Other", 2) in plots.OKABE_ITO.values()
    assert plots.arm_colour("Other", 2) not in plots.ARM_COLOURS.values()


def test_the_theme_is_seaborn_paper_context_with_the_project_palette():
    import seaborn as sns

    rc = plots.theme_rc()
    assert rc["axes.prop_cycle"].by_key()["color"][:2] == [plots.ARM_COLOURS["reference"],
                                                            plots.ARM_COLOURS["experimental"]]
    assert rc["grid.linewidth"] == sns.plotting_context("paper")["grid.linewidth"]
    with matplotlib.rc_context():
        plots.apply_style()
        assert [matplotlib.colors.to_hex(c) for c in sns.color_palette()[:2]] == \
            [c.lower() for c in plots.PALETTE[:2]]


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
def test_km_figure_has_curves_panel_and_risk_table_aligned_on_the_same_months(study, endpoint):
    fig, _ = _plot(study, endpoint)
    ax, table = fig.axes
    assert ax.get_xlim() == table.get_xlim()
    ticks = [t for t in ax.get_xticks() if t <= ax.get_xlim()[1]]
    assert np.allclose(np.diff(ticks), 6)
    assert "Months" in ax.get_xlabel()
    plt.close(fig)


def test_km_curves_differ_in_colour_and_line_style_by_arm_position(study):
    fig, _ = _plot(study)
    steps = [line for line in fig.axes[0].get_lines() if line.get_label() in LABELS.values()]
    assert [line.get_label() for line in steps] == ["Arm one", "Arm two"]
    assert matplotlib.colors.to_hex(steps[0].get_color()) == plots.ARM_COLOURS["reference"].lower()
    assert matplotlib.colors.to_hex(steps[1].get_color()) == plots.ARM_COLOURS["experimental"].lower()
    assert steps[0].get_linestyle() != steps[1].get_linestyle()
    plt.close(fig)


def test_km_risk_table_shows_numbers_at_risk_and_cumulative_events_per_arm(study, patients):
    fig, _ = _plot(study)
    table = fig.axes[1]
    shown = [t.get_text() for t in table.texts]
    assert "Number at risk" in shown and "Cumulative events" in shown
    assert "Arm one" in shown and "Arm two" in shown and "A" not in shown
    ticks = [t for t in fig.axes[0].get_xticks() if t <= fig.axes[0].get_xlim()[1]]
    for position, arm in enumerate(("A", "B")):
        sub = patients[patients["arm"] == arm]
        counts = sv.number_at_risk(sub["os_months"], sub["os_event"], ticks)
        row = [t.get_text() for t in table.texts
               if t.get_color() == plots.arm_colour(position) and t.get_text().isdigit()]
        assert row == [str(v) for v in counts["n_risk"]] + [str(v) for v in counts["cum_events"]]
    plt.close(fig)


def test_km_figure_annotates_log_rank_p_and_hazard_ratio_with_arm_labels(study):
    fig, result = _plot(study)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "Log-rank P" in text
    assert f"HR {result.hazard_ratio.estimate.value:.2f}" in text
    assert "Arm two vs Arm one" in text
    plt.close(fig)


def test_km_legend_reports_each_arms_median_under_its_label(study):
    fig, result = _plot(study)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for arm, label in zip(result.arms, labels):
        med = arm.median.value
        assert label.startswith(LABELS[arm.arm]) and (f"{med:.1f}" in label if arm.median.reached else "NR" in label)
    plt.close(fig)


def test_km_panel_titles_carry_no_arm_codes(study):
    fig, _ = _plot(study, title="Overall survival")
    for ax in fig.axes:
        assert ax.get_title(loc="left") in ("Overall survival", "")
    plt.close(fig)


def test_plotting_does_not_change_global_matplotlib_style(study):
    before = matplotlib.rcParams["font.size"]
    plt.close(_plot(study, "pfs")[0])
    assert matplotlib.rcParams["font.size"] == before


def test_an_arm_code_without_its_position_has_no_colour():
    with pytest.raises(ValueError, match="position"):
        plots.arm_colour("CMT")


def test_km_figure_shows_the_ph_test_of_the_arm_next_to_the_hazard_ratio(study):
    fig, result = _plot(study)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "PH test P" in text and "HR" in text
    plt.close(fig)


def test_a_truncated_time_axis_says_where_it_ends_and_how_far_follow_up_continues(study, patients):
    last = float(patients["os_months"].max())
    xmax = 6 * max(1, int(last // 12))            # a break well before the last follow-up
    fig, _ = _plot(study, xmax=xmax)
    notes = [t.get_text() for t in fig.axes[1].texts if t.get_text().startswith("Axis ends at")]
    assert notes and f"{xmax:g} months" in notes[0] and f"{last:.1f} months" in notes[0]
    plt.close(fig)
    fig, _ = _plot(study)
    assert not [t for t in fig.axes[1].texts if t.get_text().startswith("Axis ends at")]
    plt.close(fig)
