"""Embedding drift: reservoir reference samples, two-sample tests and a per-request OOD score.

All of them work on plain ``(n, dim)`` NumPy embedding matrices (e.g. from
``parrotwatch.detectors.models.encoder``); see docs/drift.md for which to use when.
"""

from parrotwatch.detectors.drift.classifier import ClassifierResult, domain_classifier_test
from parrotwatch.detectors.drift.knn import KnnOod
from parrotwatch.detectors.drift.mmd import MMDResult, mmd_test
from parrotwatch.detectors.drift.reservoir import Reservoir

__all__ = ["ClassifierResult", "KnnOod", "MMDResult", "Reservoir", "domain_classifier_test", "mmd_test"]
