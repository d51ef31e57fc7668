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


# --------------------------------------------------------------------------- every figure of helpers/report
# Built from the default study with the analyses' public functions, as the notebooks call them (small
# bootstrap sizes): each figure uses only the type scheme's sizes and fits the double column.


@pytest.fixture(scope="module")
def default_inputs():
    import warnings

    from helpers.analyses import prognostic
    from helpers.analyses.response import analyse_response
    from helpers.analyses.safety import analyse_safety
    from helpers.analyses.sensitivity import run_sensitivity
    from helpers.analyses.subgroups import run_subgroups
    from helpers.config import load_plan
    from helpers.data.load import load_study
    from helpers.report import prognostic as prognostic_report

    study = load_study(PROJECT_ROOT / "data")
    plan = load_plan(study.folder)
    choices = {**plan["prognostic"], "seed": plan["seed"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prognostic.prepare(study, choices)
        univariable = prognostic.fit_univariables(data)
        mv = prognostic.fit_selected_model(data, univariable, "os")
        ph = prognostic.check_proportional_hazards(mv)
        calibration = prognostic.calibration_at(mv, choices["calibration_months"], choices["calibration_groups"])
        sensitivity = run_sensitivity(study, {**plan["sensitivity"], "n_bootstrap": 20}, seed=plan["seed"],
                                      workers=1)
        subgroups = run_subgroups(study, plan["subgroups"])
    return SimpleNamespace(
        study=study, plan=plan, os=analyse_endpoint(study, "os", plan["survival"]),
        response=analyse_response(study, plan["response"]), safety=analyse_safety(study, plan["safety"]),
        mv=mv, ph=ph, calibration=calibration, words=prognostic_report.words_for(data, study),
        sensitivity=sensitivity, subgroups=subgroups)


def _figure(name, inputs):
    from helpers.report import prognostic, response, safety, sensitivity, subgroups

    s, surv = inputs.study, inputs.plan["survival"]
    makers = {
        "km": lambda: plots.plot_km(s, inputs.os, break_months=surv["break_months"], xmax=surv["xmax_months"]),
        "weighted-km": lambda: sensitivity.plot_weighted_km(inputs.sensitivity, study=s,
                                                            break_months=surv["break_months"],
                                                            xmax=surv["xmax_months"]),
        "love": lambda: sensitivity.plot_love(inputs.sensitivity),
        "ps-overlap": lambda: sensitivity.plot_ps_overlap(inputs.sensitivity),
        "forest-prognostic": lambda: prognostic.forest_figure(inputs.mv, inputs.words),
        "schoenfeld": lambda: prognostic.schoenfeld_figure(inputs.ph, inputs.words),
        "forest-subgroups": lambda: subgroups.plot_subgroup_forest(inputs.subgroups, s, "os"),
        "response": lambda: response.plot_response(inputs.response, s),
        "adverse-events": lambda: safety.plot_adverse_events(inputs.safety, s),
    }
    return makers[name]()


FIGURES = ("km", "weighted-km", "love", "ps-overlap", "forest-prognostic", "schoenfeld", "forest-subgroups",
           "response", "adverse-events")


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_uses_only_the_type_scheme_and_fits_the_double_column(default_inputs, name):
    from matplotlib.text import Text

    fig = _figure(name, default_inputs)
    if fig is None:
        pytest.skip(f"the default study gives no {name} figure")
    fig.canvas.draw()
    scheme = {plots.FONT_PT, plots.FONT_SMALL_PT, plots.theme_rc()["axes.titlesize"]}
    sizes = {(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()}
    assert sizes, "the figure has no text"
    off = sorted((text, size) for text, size in sizes if not any(abs(size - ok) < 1e-6 for ok in scheme))
    assert not off, f"{name}: text outside the type scheme {sorted(scheme)} pt: {off[:5]}"
    width = fig.get_size_inches()[0]
    assert width <= plots.DOUBLE_WIDTH_IN + 1e-6, f"{name}: {width:.2f} in is wider than the double column"
    plt.close(fig)


def _with_balance(res, balance):
    """``res`` with the balance table of its primary weighting replaced."""
    import dataclasses

    assert res.estimable, "the default study's weighting is estimable"
    return dataclasses.replace(res, main=dataclasses.replace(res.main, balance=balance))


def test_the_love_plot_breaks_its_axis_when_one_covariate_dominates(default_inputs):
    from helpers.report.sensitivity import LOVE_CAP, plot_love

    res = default_inputs.sensitivity
    balance = res.balance.copy()
    balance.loc[balance.index[0], "smd_unweighted"] = 3 * LOVE_CAP      # one covariate far beyond the cap
    fig = plot_love(_with_balance(res, balance))
    assert len(fig.axes) == 2, "a dominating covariate gets its own (break) panel"
    main, broken = fig.axes
    assert main.get_xlim()[1] <= LOVE_CAP and broken.get_xlim()[1] >= 3 * LOVE_CAP
    plt.close(fig)
    small = res.balance.copy()
    cols = [c for c in ("smd_unweighted", "smd_ATE", "smd_ATO") if c in small.columns]
    small[cols] = small[cols].clip(-0.3, 0.3)
    fig = plot_love(_with_balance(res, small))
    assert len(fig.axes) == 1, "no break panel when every covariate is below the cap"
    plt.close(fig)


def test_the_weighted_km_has_a_ci_band_per_arm(default_inputs):
    from matplotlib.collections import PolyCollection

    from helpers.report.sensitivity import plot_weighted_km

    res = default_inputs.sensitivity
    fig = plot_weighted_km(res, study=default_inputs.study)
    curves = [ax for ax in fig.axes if any(not line.get_label().startswith("_") for line in ax.lines)]
    assert len(curves) == len(res.endpoints)
    for ax in curves:
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == len(default_inputs.study.config.arm_order) == 2
        colours = {tuple(np.round(b.get_facecolor()[0][:3], 3)) for b in bands}
        assert len(colours) == 2, "each arm's band in its arm's colour"
    plt.close(fig)


def test_a_registry_scatter_is_thinned_deterministically_and_said_so():
    shown, step = plots.thin_for_display(100, most=2000)
    assert step == 1 and list(shown) == list(range(100))
    shown, step = plots.thin_for_display(60_123, most=2000)
    assert step == 31 and len(shown) <= 2000 and shown[0] == 0 and np.all(np.diff(shown) == 31)


def test_ordinals_read_as_english():
    from helpers.report.formatting import ordinal
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 112)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th", "112th"]


def test_the_notebook_shows_the_renderings_save_figure_made_unless_the_figure_changed(tmp_path):
    import base64
    from helpers.report.figures import _display_figure
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    written = plots.save_figure(fig, "cached", tmp_path)
    assert base64.b64decode(_display_figure(fig, "png")) == written["png"].read_bytes()
    assert _display_figure(fig, "svg") == written["svg"].read_text(encoding="utf-8")
    ax.set_title("changed after saving")
    assert fig.stale
    fresh = base64.b64decode(_display_figure(fig, "png"))
    assert fresh != written["png"].read_bytes() and fresh.startswith(b"\x89PNG")
    plt.close(fig)


def test_schoenfeld_smoother_and_its_two_se_band_equal_r_plot_cox_zph():
    # tests/reference/schoenfeld_bands.R: the three lines plot.cox.zph draws (recordPlot), survival::veteran,
    # coxph(Surv(time, status) ~ karno + age + trt), cox.zph(transform = "km"), df = 4, nsmo = 40.
    import json

    from helpers.report.prognostic import _spline_smooth
    from helpers.stats.cox import fit_coxph, km_time_transform, scaled_schoenfeld, schoenfeld_variance
    ref = json.loads((PROJECT_ROOT / "tests" / "reference" / "schoenfeld_bands.json").read_text())
    data = pd.DataFrame(ref["data"])
    fit = fit_coxph(data["time"].to_numpy(float), data["status"].to_numpy(int),
                    data[ref["terms"]].to_numpy(float), names=ref["terms"])
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=1e-8)
    engine = getattr(fit, "engine", fit)
    residuals = scaled_schoenfeld(engine)
    x = km_time_transform(engine, residuals.pop("time").to_numpy())
    variance = np.diag(schoenfeld_variance(engine))
    assert np.linspace(x.min(), x.max(), 40) == pytest.approx(ref["bands"][ref["terms"][0]]["x"], abs=1e-12)
    for k, term in enumerate(ref["terms"]):
        band = ref["bands"][term]
        smooth, se = _spline_smooth(x, residuals[term].to_numpy(), float(variance[k]), np.asarray(band["x"]))
        np.testing.assert_allclose(smooth, band["fit"], atol=1e-10)
        np.testing.assert_allclose(smooth + 2 * se, band["upper"], atol=1e-10)
        np.testing.assert_allclose(smooth - 2 * se, band["lower"], atol=1e-10)
