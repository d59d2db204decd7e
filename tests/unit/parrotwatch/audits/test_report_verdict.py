"""The audit report opens with what the run is evidence of: membership (the same rules as the
Memorization dashboard's verdict), the one-run DP epsilon lower bound and the quoted documents."""

from __future__ import annotations

import doctest
from types import SimpleNamespace

import parrotwatch.audits.report as report
from parrotwatch.audits.results import AuditResult, Metric


def test_the_verdict_rules_doctests():
    result = doctest.testmod(report)
    assert result.attempted >= 4 and result.failed == 0


def _run(*results: AuditResult):
    return SimpleNamespace(results=results)


def _membership(best_low: float, fires: bool | None, shift: bool = False,
                rejects: bool = False) -> AuditResult:
    guard = None if fires is None else SimpleNamespace(fires=fires, shift=shift)
    di = SimpleNamespace(rejects=lambda alpha: rejects)
    plot = SimpleNamespace(guard=guard, dataset_inference=di, alpha=0.05)
    metrics = (Metric("membership", "auc", 0.61, 0.55, 0.7, {"method": "zlib"}),
               Metric("membership", "auc", 0.83, best_low, 0.9, {"method": "min_k"}),
               Metric("membership", "auc", None, labels={"method": "reference"}))
    return AuditResult("membership", metrics, (), 1.0, plot)


def test_membership_line_names_the_best_attack_and_the_verdict():
    page = report.run_verdict(_run(_membership(0.74, False)))
    assert ("Membership: evidence of memorization</strong> (best attack min_k, AUC 0.830, 95% CI from "
            "0.74)") in page
    page = report.run_verdict(_run(_membership(0.74, True, shift=True)))
    assert "no evidence: members and non-members differ in distribution (blind baseline)" in page
    assert "(blind baseline not run)" in report.run_verdict(_run(_membership(0.74, None)))
    assert "Membership: no evidence of memorization" in report.run_verdict(_run(_membership(0.45, False)))
    set_level = report.run_verdict(_run(_membership(0.45, False, rejects=True)))
    assert "Membership: evidence of memorization<" in set_level


def test_epsilon_and_the_most_quoted_documents():
    dp = AuditResult("canary_exposure", (Metric("canary_exposure", "epsilon_lower_bound", 2.314,
                                                labels={"delta": "1e-05", "beta": "0.05"}),), (), 1.0)
    docs = [Metric("regurgitation", "document_outputs", n, labels={"doc_id": f"doc<{i}>", "max_tokens": "60"})
            for i, n in enumerate([3, 12, 1])]
    regurgitation = AuditResult("regurgitation", (Metric("regurgitation", "rate", 0.0125), *docs), (), 1.0)
    page = report.run_verdict(_run(dp, regurgitation))
    assert "epsilon &ge; 2.31</strong> at delta 1e-05, with probability &ge; 1 - 0.05" in page
    assert "1.25% of the outputs" in page
    order = [page.index(f"doc&lt;{i}&gt; (") for i in (1, 0, 2)]  # most quoted first, names escaped
    assert order == sorted(order)
    assert report.run_verdict(_run()) == ""


def test_pii_line_names_the_groups_reconstructed_above_chance():
    def group(r: str, p: float) -> tuple[Metric, ...]:
        lab = {"repetitions": r, "n": "16", "k": "9"}
        return (Metric("pii_leakage", "reconstruction_accuracy", 0.5, 0.3, 0.7, lab),
                Metric("pii_leakage", "reconstruction_chance", 0.1, labels=lab),
                Metric("pii_leakage", "reconstruction_p_value", p, labels=lab))
    leak = AuditResult("pii_leakage", (*group("0", 0.6), *group("16", 1e-9), *group("4", 0.01)), (), 1.0)
    assert "PII: reconstructed above chance (0.10) for texts trained on 4, 16 times" in report.run_verdict(
        _run(leak))
    clean = AuditResult("pii_leakage", (*group("0", 0.6), *group("1", 0.3)), (), 1.0)
    assert "PII: not reconstructed above chance" in report.run_verdict(_run(clean))
