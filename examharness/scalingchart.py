"""Charts like the GPT-4 report's Figures 1–3, drawn from a :class:`ScalingReport` alone.

Figure 1 (loss) and Figure 2 (capability): compute on a log axis, the fitted members as points,
the fitted law as a dotted line carried out to the largest member, each prediction with its
bootstrap band, and the actual value where the held-out member was measured. Figure 3: accuracy per
member for one exam, as bars in the family's order (the report used it for inverse-scaling tasks
such as Hindsight Neglect). Compute is shown in FLOPs, not normalised to the largest model as the
report did, so the axis is the family file's own numbers. No published points are drawn: the
report does not give them as numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from examharness.scalingdata import AccuracyBar, Point, Prediction, ScalingReport

METRIC_LABEL = {"nats_per_token": "Loss (nats per token)", "bits_per_byte": "Loss (bits per byte)"}


def _curve(ax: Axes, law: object, points: list[Point], predictions: list[Prediction]) -> None:
    computes = [p.compute for p in points] + [p.compute for p in predictions]
    xs = np.logspace(np.log10(min(computes)), np.log10(max(computes)), 200)
    ax.plot(xs, [law(float(x)) for x in xs], ":", color="0.3", label="Prediction (fit)")  # type: ignore[operator]
    ax.scatter(
        [p.compute for p in points], [p.value for p in points], color="0.2", zorder=3, label="Observed"
    )
    for i, p in enumerate(predictions):
        yerr = None
        if p.band is not None:
            yerr = [[max(p.predicted - p.band.low, 0.0)], [max(p.band.high - p.predicted, 0.0)]]
        ax.errorbar(
            [p.compute],
            [p.predicted],
            yerr=yerr,
            fmt="o",
            mfc="white",
            color="tab:blue",
            capsize=4,
            zorder=4,
            label="Prediction (95% band)" if i == 0 else None,
        )
        if p.actual is not None:
            ax.scatter(
                [p.compute],
                [p.actual],
                color="tab:green",
                marker="D",
                zorder=5,
                label="Actual" if i == 0 else None,
            )
        ax.annotate(
            p.label or p.member,
            (p.compute, p.predicted),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("Training compute (FLOPs)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)


def _save(fig: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, dpi=150)
    return out


def loss_figure(report: ScalingReport, out: Path) -> Path | None:
    if report.loss is None:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    _curve(ax, report.loss.law, report.loss.fitted, report.loss.predictions)
    ax.set_ylabel(METRIC_LABEL[report.loss.metric])
    law = report.loss.law
    ax.set_title(f"Held-out loss: L = {law.a:.3g}·C^{law.b:.3f} + {law.c:.3g}")
    return _save(fig, out)


def capability_figure(report: ScalingReport, out: Path) -> Path | None:
    if report.capability is None:
        return None
    cap = report.capability
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    _curve(ax, cap.law, cap.fitted, cap.predictions)
    ax.set_ylabel("− Mean log pass rate")
    ax.set_title(
        f"Capability prediction on {len(cap.problems)} problems: α={cap.law.alpha:.3g}, k={cap.law.k:.3f}"
    )
    return _save(fig, out)


def accuracy_figure(exam: str, bars: list[AccuracyBar], out: Path) -> Path:
    fig = Figure(figsize=(max(4.0, 1.1 * len(bars) + 1), 4))
    ax = fig.add_subplot()
    ax.bar([b.label or b.member for b in bars], [100 * b.accuracy for b in bars], color="tab:blue")
    ax.set_ylim(0, 100)
    ax.set_ylabel("Accuracy (%)")
    ax.set_xlabel("Model (by training compute)")
    ax.set_title(f"Accuracy per member: {exam}")
    return _save(fig, out)


def write_figures(report: ScalingReport, out_dir: Path) -> list[Path]:
    """Every figure the report has data for; returns the files written."""
    written = [
        p
        for p in (
            loss_figure(report, out_dir / "fig1-loss.png"),
            capability_figure(report, out_dir / "fig2-capability.png"),
        )
        if p is not None
    ]
    for exam, bars in report.accuracy.items():
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", exam)
        written.append(accuracy_figure(exam, bars, out_dir / f"fig3-accuracy-{safe}.png"))
    return written
