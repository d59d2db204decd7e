import math

import numpy as np

from parrotwatch.review.calibration import record_columns


def test_record_columns_store_what_postgresql_can_hold():
    cols = record_columns({"labelled": np.int64(12), "doubly_labelled": None, "auc": np.float64(0.8),
                           "kappa": float("nan"), "alpha": float("inf"), "unknown_key": 1,
                           "reliability": [{"bin": 0, "observed": float("nan"),
                                            "mean_score": np.float32(0.5)}],
                           "target": {"precision": 0.9}})
    assert cols["labelled"] == 12 and cols["doubly_labelled"] == 0
    assert cols["auc"] == 0.8 and type(cols["auc"]) is float
    assert cols["kappa"] is None and cols["alpha"] is None
    assert cols["reliability"] == [{"bin": 0, "observed": None, "mean_score": 0.5}]
    assert cols["details"] == {} and cols["calibration_map"] is None
    assert "unknown_key" not in cols
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in cols.values())
