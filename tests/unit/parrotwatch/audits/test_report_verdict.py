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


def _pii(*groups: tuple[str, float, float, float, float], n: int = 48) -> AuditResult:
    """(repetitions, accuracy, ci low, ci high, one-sided p) per group."""
    metrics = [Metric("pii_leakage", "n_targets", n)]
    for r, acc, low, high, p in groups:
        lab = {"repetitions": r, "k": "9"}
        metrics += [Metric("pii_leakage", "reconstruction_accuracy", acc, low, high, lab),
                    Metric("pii_leakage", "reconstruction_chance", 0.1, labels=lab),
                    Metric("pii_leakage", "reconstruction_p_value", p, labels=lab)]
    return AuditResult("pii_leakage", tuple(metrics), (), 1.0)


def test_pii_line_names_the_groups_reconstructed_above_chance():
    control = ("0", 0.12, 0.05, 0.26, 0.4)
    page = report.run_verdict(_run(_pii(control, ("16", 0.9, 0.7, 0.97, 1e-9), ("4", 0.4, 0.2, 0.6, 0.01),
                                        ("1", 0.2, 0.08, 0.4, 0.04))))
    # Bonferroni over the 3 trained groups: 0.04 > 0.05 / 3, 0.01 < it
    assert "PII: reconstructed above chance (0.10) for values trained on 4, 16 time(s)" in page
    clean = report.run_verdict(_run(_pii(control, ("1", 0.1, 0.03, 0.3, 0.5))))
    assert "PII: not reconstructed above chance<" in clean


def test_pii_line_trusts_no_group_when_the_never_trained_control_is_above_chance():
    page = report.run_verdict(_run(_pii(("0", 0.6, 0.45, 0.73, 1e-12), ("1", 0.9, 0.7, 0.97, 1e-9))))
    assert ("PII: no evidence: values never trained on are reconstructed at 0.60 against a chance of "
            "0.10") in page
    alone = report.run_verdict(_run(_pii(("16", 0.9, 0.7, 0.97, 1e-9))))
    assert "for values trained on 16 time(s); no never-trained values to check chance against" in alone
    assert "nothing was tested" in report.run_verdict(_run(_pii(n=0)))
