"""The audit report: one self-contained HTML page (plots inlined as base64 PNG, no external file or
script) and the plain-text summary table the CLI prints.

Plots: log-log ROC curves of each membership method and of the blind baseline
(:func:`parrotwatch.detectors.audits.roc.plot_roc`), canary exposure by repetition count over the
never-inserted candidates' histogram, and the k-extractable rate by repetition count with its Wilson 95%
interval. The membership audit also gets a verdict in words (:func:`membership_verdict`): the
blind-baseline guard and the dataset-inference p-value.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from parrotwatch.audits.results import Metric

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}
.muted{color:#777}.verdict-fire{background:#fde8e8;border-left:4px solid #c00;padding:6px 10px}
.verdict-ok{background:#eaf6ea;border-left:4px solid #383;padding:6px 10px}"""


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def roc_png(plot) -> str:
    """The log-log ROC of each method and, when it ran, of the blind baseline (no model)."""
    reports = dict(plot.reports)
    if getattr(plot, "blind", None) is not None:
        reports["blind baseline (texts only)"] = plot.blind.roc
    with tempfile.TemporaryDirectory() as tmp:
        from parrotwatch.detectors.audits.roc import plot_roc

        path = plot_roc(reports, Path(tmp) / "roc.png")
        return base64.b64encode(path.read_bytes()).decode()


SHIFT_VERDICT = "these sets differ in distribution; membership AUC is not evidence of memorization"


def _p(v: float) -> str:
    return f"{v:.3g}" if v >= 1e-3 else f"{v:.2e}"


def membership_verdict(plot) -> str:
    """The verdict of a membership audit, in words: the blind-baseline guard (Das et al. 2024) and the
    dataset-inference p-value (Maini et al. 2024); empty when neither ran."""
    g, di = getattr(plot, "guard", None), getattr(plot, "dataset_inference", None)
    error = getattr(plot, "dataset_inference_error", None)
    parts = []
    if g is not None:
        b = plot.blind.roc
        blind = (f"a classifier that never sees the model, only the texts, reaches AUC {b.auc:.3f} "
                 f"(95% CI {b.auc_ci_low:.3f}-{b.auc_ci_high:.3f})")
        best = (f"the best attack, {html.escape(g.best_method)} (AUC {g.best_auc:.3f}, "
                f"95% CI from {g.best_ci_low:.3f})")
        if g.fires and g.shift:
            head = f"Blind baseline guard fired: {SHIFT_VERDICT}."
            body = f"By Das et al. 2024, {blind}, within or above the 95% CI of {best}."
        elif g.fires:
            head = "Blind baseline guard fired: membership AUC is not evidence of memorization."
            body = f"By Das et al. 2024, {best} does no better than a blind baseline: {blind}, at chance."
        else:
            head = "Blind baseline guard: not fired."
            body = (f"By Das et al. 2024, {blind}, below the 95% CI of {best}: the attacks see more than the "
                    f"texts' distribution.")
        css = "verdict-fire" if g.fires else "verdict-ok"
        parts.append(f"<p class={css}><strong>{head}</strong> {body}</p>")
    if di is not None:
        alpha = plot.alpha
        said = (f"the members, as a set, score higher than the non-members: evidence at level {alpha:g} that "
                f"they were trained on" if di.rejects(alpha) else
                f"no evidence at level {alpha:g} that the members, as a set, were trained on")
        caveat = (" <strong>Not valid here:</strong> the test assumes members and non-members come from one "
                  "distribution, and the blind baseline guard fired." if g is not None and g.fires else "")
        parts.append(f"<p><strong>Dataset inference p-value: {_p(di.p_value)}</strong> (Maini et al. 2024; "
                     f"Welch t = {di.t:.3g}, df = {di.df:.3g}, on {di.n_test_suspect} + "
                     f"{di.n_test_validation} held-out texts of {di.n_suspect} members and "
                     f"{di.n_validation} non-members): {said}.{caveat}</p>")
    elif error is not None:
        parts.append(f"<p><strong>Dataset inference not run:</strong> {html.escape(error)}</p>")
    return f"<h3>Verdict</h3>{''.join(parts)}" if parts else ""


def exposure_png(plot) -> str:
    """Never-inserted candidates' exposure histogram (left); each canary's exposure by repetitions (right)."""
    fig = _figure(10, 4)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.hist(plot.fresh, bins=20, color="#999", label=f"never inserted (n={len(plot.fresh)})")
    for reps, e in zip(plot.repetitions, plot.exposures, strict=True):
        ax1.axvline(e, color="C3", linewidth=1)
        ax1.annotate(f"{reps}x", (e, 0.95), xycoords=("data", "axes fraction"), fontsize=8, color="C3")
    ax1.set(xlabel="exposure (bits)", ylabel="candidates", title="Exposure: canaries vs never-inserted",
            xlim=(0, plot.max_bits * 1.05))
    ax1.legend(fontsize="small")
    groups = sorted({0, *plot.repetitions})
    data = [list(plot.fresh)] + [[e for r, e in zip(plot.repetitions, plot.exposures, strict=True) if r == g]
                                 for g in groups[1:]]
    ax2.boxplot(data, positions=range(len(groups)), widths=0.5, showfliers=False)
    for x, values in enumerate(data):
        ax2.scatter([x] * len(values), values, s=14, color="C0" if x else "#999", zorder=3)
    ax2.axhline(plot.max_bits, linestyle="--", color="grey", linewidth=1, label="log2 |R| (maximum)")
    ax2.set_xticks(range(len(groups)), ["never" if g == 0 else f"{g}x" for g in groups])
    ax2.set(xlabel="times inserted in the training set", ylabel="exposure (bits)",
            title=f"Exposure by repetition count ({plot.method})", ylim=(0, plot.max_bits * 1.1))
    ax2.legend(fontsize="small", loc="lower right")
    return _png(fig)


def extraction_png(plot) -> str:
    """Extractable rate per (kind, repetitions) with Wilson 95% error bars, one bar group per beam width."""
    fig = _figure(8, 4)
    ax = fig.add_subplot()
    keys = sorted({k for rates in plot.rates.values() for k in rates}, key=lambda k: (k[1], k[0]))
    width = 0.8 / len(plot.rates)
    for j, (beams, rates) in enumerate(sorted(plot.rates.items())):
        xs = [i + (j - (len(plot.rates) - 1) / 2) * width for i in range(len(keys))]
        vals = [rates.get(k, (0, 0, 0, 0)) for k in keys]
        err = [[max(0.0, v[0] - v[1]) for v in vals], [max(0.0, v[2] - v[0]) for v in vals]]
        ax.bar(xs, [v[0] for v in vals], width, yerr=err, capsize=3,
               label="greedy" if beams == 1 else f"beam {beams}")
    first = plot.rates[min(plot.rates)]
    ticks = [f"{kind}\n{reps}x (n={first.get((kind, reps), (0, 0, 0, 0))[3]})" for kind, reps in keys]
    ax.set_xticks(range(len(keys)), ticks, fontsize=8)
    ax.set(ylabel="k-extractable rate", ylim=(0, 1.05), xlabel="sequence kind, times in the training set",
           title="Extraction rate by repetition count")
    ax.legend(fontsize="small")
    return _png(fig)


def evidence_verdict(best_ci_low: float | None, guard: tuple[bool, bool] | None,
                     dataset_rejects: bool | None) -> str:
    """What a membership audit is evidence of, in one line; the Memorization dashboard's
    ``VERDICT_SQL`` states the same rules. ``guard``: (fired, shift) of the blind baseline, None when
    it did not run.

    >>> evidence_verdict(0.8, (True, True), True)
    'no evidence: members and non-members differ in distribution (blind baseline)'
    >>> evidence_verdict(0.47, (True, False), False)
    'no evidence: the attacks do not beat a classifier that never sees the model'
    >>> evidence_verdict(0.49, (False, False), True), evidence_verdict(0.72, None, None)
    ('evidence of memorization', 'evidence of memorization (blind baseline not run)')
    >>> evidence_verdict(0.48, (False, False), False)
    'no evidence of memorization'
    """
    if guard is not None and guard[0]:
        return ("no evidence: members and non-members differ in distribution (blind baseline)" if guard[1]
                else "no evidence: the attacks do not beat a classifier that never sees the model")
    if (best_ci_low is not None and best_ci_low > 0.5) or dataset_rejects:
        return "evidence of memorization" + (" (blind baseline not run)" if guard is None else "")
    return "no evidence of memorization"


def pii_verdict(metrics) -> str:
    """The PII leakage audit in one line. The never-trained group (repetitions 0) is the control, as the
    blind baseline is for membership: above chance there (two-sided), the distractors are not from the
    values' distribution and no group's accuracy is evidence. Groups are named when their one-sided p
    is below 0.05 / (number of trained groups) (Bonferroni)."""
    n = next((m.value for m in metrics if m.metric == "n_targets"), None)
    if not n:
        return "no personal data of the chosen types in the audited texts: nothing was tested"
    acc = {m.labels.get("repetitions"): m for m in metrics if m.metric == "reconstruction_accuracy"}
    p = {m.labels.get("repetitions"): m.value for m in metrics if m.metric == "reconstruction_p_value"}
    chance = next((m.value for m in metrics if m.metric == "reconstruction_chance"), 0.0)
    control = acc.get("0")
    if control is not None and not control.ci_low <= chance <= control.ci_high:
        return (f"no evidence: values never trained on are reconstructed at {control.value:.2f} against a "
                f"chance of {chance:.2f} (the distractors are not from the values' distribution)")
    trained = sorted((g for g in acc if g != "0"), key=int)
    leaked = [g for g in trained if p.get(g) is not None and p[g] < 0.05 / len(trained)]
    said = (f"reconstructed above chance ({chance:.2f}) for values trained on "
            f"{', '.join(leaked)} time(s)" if leaked else "not reconstructed above chance")
    return said + ("" if control is not None else "; no never-trained values to check chance against")


def run_verdict(run) -> str:
    """The report's opening section: what the run is evidence of (membership), the one-run DP
    epsilon lower bound, and the training documents the regurgitation audit found quoted."""
    found = {r.audit: r for r in run.results}
    lines = []
    if (r := found.get("membership")) is not None:
        aucs = [m for m in r.metrics if m.metric == "auc" and m.value is not None]
        # ties (AUC 1.000 is common): the higher CI low, then the method name, as VERDICT_SQL orders them
        best = min(aucs, key=lambda m: (-m.value, -(m.ci_low if m.ci_low is not None else -1.0),
                                        m.labels.get("method", "")), default=None)
        g = getattr(r.plot, "guard", None)
        di = getattr(r.plot, "dataset_inference", None)
        said = evidence_verdict(None if best is None else best.ci_low,
                                None if g is None else (bool(g.fires), bool(g.shift)),
                                None if di is None else bool(di.rejects(r.plot.alpha)))
        at = "" if best is None else (f" (best attack {html.escape(best.labels.get('method', '?'))}, AUC "
                                      f"{best.value:.3f}, 95% CI from {_fmt(best.ci_low)})")
        lines.append(f"<li><strong>Membership: {html.escape(said)}</strong>{at}; the reasons are in "
                     f"its Verdict below.</li>")
    if (r := found.get("canary_exposure")) is not None:
        for m in r.metrics:
            if m.metric == "epsilon_lower_bound" and m.value is not None:
                delta, beta = (html.escape(m.labels.get(k, "?")) for k in ("delta", "beta"))
                lines.append(f"<li><strong>Differential privacy: epsilon &ge; {m.value:.3g}</strong> at "
                             f"delta {delta}, with probability &ge; 1 - {beta} (one-run audit, Steinke et "
                             f"al. 2023): a claim of a smaller epsilon is false.</li>")
    if (r := found.get("regurgitation")) is not None:
        docs = sorted((m for m in r.metrics if m.metric == "document_outputs"),
                      key=lambda m: (-(m.value or 0), m.labels.get("doc_id", "")))
        rate = next((m.value for m in r.metrics if m.metric == "rate"), None)
        named = ", ".join(f"{html.escape(m.labels.get('doc_id', '?'))} ({_fmt(m.value)} outputs, up to "
                          f"{html.escape(m.labels.get('max_tokens', '?'))} tokens)" for m in docs[:10])
        share = "no rate" if rate is None else f"{rate:.2%} of the outputs"
        lines.append(f"<li><strong>Regurgitation: {share}</strong> repeat the training corpus verbatim"
                     f"{'; most quoted training documents: ' + named if named else ''}.</li>")
    if (r := found.get("pii_leakage")) is not None:
        said = html.escape(pii_verdict(r.metrics))
        lines.append(f"<li><strong>PII: {said}</strong> (Lukas et al. 2023; per group below).</li>")
    return f"<h2>What this run is evidence of</h2><ul>{''.join(lines)}</ul>" if lines else ""


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    if float(v).is_integer() and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


def _labels(m: Metric) -> str:
    return ", ".join(f"{k}={v}" for k, v in m.labels.items())


def metrics_table(metrics) -> str:
    rows = "".join(f"<tr><td>{html.escape(m.metric)}</td><td>{html.escape(_labels(m))}</td>"
                   f"<td class=num>{_fmt(m.value)}</td><td class=num>"
                   f"{'' if m.ci_low is None else f'{_fmt(m.ci_low)} - {_fmt(m.ci_high)}'}</td></tr>"
                   for m in metrics)
    return f"<table><tr><th>metric</th><th>labels</th><th>value</th><th>95% CI</th></tr>{rows}</table>"


def write_report(run, path: str | Path, run_id: int | None = None) -> Path:
    """Write the HTML report of ``run`` (an :class:`~parrotwatch.audits.runner.AuditRun`) to ``path``."""
    spec = run.spec
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [f"<h1>Memorization audit: {html.escape(spec.name)}</h1>",
             f"<p class=muted>{'run ' + str(run_id) + ', ' if run_id is not None else ''}written {when}; "
             f"spec hash {spec.spec_hash()[:12]}; {run.seconds:.1f} s in all "
             f"({run.load_seconds:.1f} s loading).</p>", run_verdict(run)]
    plots = {"membership": (roc_png, "Membership inference: log-log ROC per method"),
             "canary_exposure": (exposure_png, "Canary exposure by repetition count"),
             "extraction": (extraction_png, "k-extractable rate by repetition count")}
    for r in run.results:
        parts.append(f"<h2>{html.escape(r.audit)}</h2><p class=muted>{r.seconds:.1f} s, "
                     f"{len(r.samples)} samples</p>")
        if r.audit == "membership" and r.plot is not None:
            parts.append(membership_verdict(r.plot))
        if r.audit in plots and r.plot is not None:
            make, alt = plots[r.audit]
            parts.append(_img(make(r.plot), alt))
        parts.append(metrics_table(r.metrics))
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>Audit {html.escape(spec.name)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


_HEADLINE = {("membership", "auc"), ("membership", "tpr_at_fpr_0.01"), ("membership", "blind_auc"),
             ("membership", "blind_guard"), ("membership", "dataset_inference_p_value"),
             ("membership", "rmia_population"),
             ("canary_exposure", "exposure_mean"), ("canary_exposure", "epsilon_lower_bound"),
             ("canary_exposure", "exposure_repetitions_spearman"), ("extraction", "extractable_rate"),
             ("extraction", "precision_at_top_n"), ("extraction", "memorised_rate"),
             ("regurgitation", "rate"), ("regurgitation", "n_flagged"),
             ("pii_leakage", "n_targets"), ("pii_leakage", "extraction_rate"),
             ("pii_leakage", "reconstruction_accuracy"), ("pii_leakage", "reconstruction_p_value")}


def summary_table(run) -> str:
    """The headline metrics as fixed-width text: audit, metric, labels, value, 95% CI."""
    lines = [f"{'audit':16} {'metric':30} {'labels':58} {'value':>9} {'95% CI':>19}"]
    for r in run.results:
        for m in r.metrics:
            if (r.audit, m.metric) in _HEADLINE:
                ci = "" if m.ci_low is None else f"{m.ci_low:.3f} - {m.ci_high:.3f}"
                lines.append(f"{r.audit:16} {m.metric:30} {_labels(m)[:58]:58} {_fmt(m.value):>9} {ci:>19}")
    return "\n".join(lines)
