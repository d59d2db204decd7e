"""Human review as a measuring instrument: sampling with known inclusion probabilities, and the
estimators that turn a handful of weighted labels into trustworthy rates.

* :mod:`.sampling`: a review set's inclusion probabilities (a uniform share, plus oversampling near
  a detector's threshold and of flagged requests) and Poisson sampling with them;
* :mod:`.estimators`: Hájek-weighted rates with linearisation variances, a detector's sensitivity
  and specificity, the Rogan-Gladen corrected prevalence with its CI, weighted Cohen's kappa and
  weighted ROC AUC.

Pure maths over numpy arrays; the review queue, its storage and the calibration job feed it.
"""
