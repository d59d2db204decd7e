"""Embedding drift: reservoir reference samples, two-sample tests and a per-request OOD score.

All of them work on plain ``(n, dim)`` NumPy embedding matrices (e.g. from
``parrotwatch.detectors.models.encoder``); see docs/drift.md for which to use when. ``mmdagg_test``
aggregates MMD tests over a collection of kernels (Schrab et al. 2023). ``MMDTest``, ``MMDAggTest``
and ``DomainClassifierTest`` are the two-sample tests as ``protocols.TwoSampleTest`` objects, ``KnnOod`` a
``protocols.RequestScorer``.
"""

from parrotwatch.detectors.drift.classifier import (
           ClassifierResult,
           DomainClassifierTest,
           domain_classifier_test,
)
from parrotwatch.detectors.drift.knn import KnnOod
from parrotwatch.detectors.drift.mmd import MMDResult, MMDTest, mmd_test
from parrotwatch.detectors.drift.mmdagg import MMDAggResult, MMDAggTest, mmdagg_test
from parrotwatch.detectors.drift.reservoir import Reservoir

__all__ = ["ClassifierResult", "DomainClassifierTest", "KnnOod", "MMDAggResult", "MMDAggTest", "MMDResult",
           "MMDTest", "Reservoir", "domain_classifier_test", "mmd_test", "mmdagg_test"]
