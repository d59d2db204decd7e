"""Human review jobs: the review sample of each period and segment, the calibration of the
detectors against the labels, the thresholds applied from it, and the retention of review texts
(docs/review.md)."""
