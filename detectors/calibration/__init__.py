"""Human review as a measuring instrument: sampling with known inclusion probabilities, and the
estimators that turn a handful of weighted labels into trustworthy rates.

* :mod:`.sampling`: a review set's inclusion probabilities (a uniform share, plus oversampling near
  a detector's threshold and of flagged requests) and Poisson sampling with them;
* :mod:`.estimators`: Hájek-weighted rates with linearisation variances, a detector's sensitivity
  and specificity, the Rogan-Gladen corrected prevalence with its CI, weighted Cohen's kappa and
  weighted ROC AUC;
* :mod:`.agreement`: Krippendorff's alpha between reviewers, a bootstrap CI for kappa, and the
  prevalence corrected for the reviewers' own error too;
* :mod:`.mapping`: a calibration map from score to P(bad) (Platt or isotonic, chosen by
  cross-validation) and its reliability diagram;
* :mod:`.calibrate`: all of it for one detector, as the calibration job stores it;
* :mod:`.planning`: how many labels are enough (the CI width as a function of their number).

Pure maths over numpy arrays; the review queue, its storage and the calibration job feed it.
"""
