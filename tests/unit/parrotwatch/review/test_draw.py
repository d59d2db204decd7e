import numpy as np
import pytest

from parrotwatch.review.draw import draw_review_set, segment_rng


def _pool(m, p1=lambda i: 0.05 if i % 3 else 0.5):
    return [(f"req-{i:04d}", p1(i)) for i in range(m)]


@pytest.mark.parametrize("m,budget", [(80, 20), (5, 20), (20, 20), (1, 3)])
def test_the_draw_takes_min_budget_pool_with_pi_p1_times_p2(m, budget):
    pool = _pool(m)
    d = draw_review_set(pool, budget, 0.2, np.random.default_rng(7))
    k = min(m, budget)
    assert len(d.items) == k and d.p2 == k / m
    p1 = dict(pool)
    for item in d.items:
        assert item.inclusion_probability == pytest.approx(p1[item.request_id] * k / m)
    assert {i.request_id for i in d.items} | set(d.not_drawn) == set(p1)
    assert not {i.request_id for i in d.items} & set(d.not_drawn)


def test_the_double_share_goes_to_two_reviewers():
    d = draw_review_set(_pool(100), 40, 0.25, np.random.default_rng(1))
    assert sum(i.reviewers_needed == 2 for i in d.items) == 10
    assert {i.reviewers_needed for i in d.items} == {1, 2}


def test_each_pooled_request_is_drawn_with_probability_p2():
    m, budget, hits = 30, 6, np.zeros(30)
    for seed in range(3000):
        d = draw_review_set(_pool(m), budget, 0.0, np.random.default_rng(seed))
        for item in d.items:
            hits[int(item.request_id[4:])] += 1
    assert np.allclose(hits / 3000, budget / m, atol=0.04)


def test_a_seed_reproduces_the_draw_and_segments_draw_independently():
    a = draw_review_set(_pool(200), 10, 0.2, segment_rng(5, "m", "a", "2026-01-01T00:00:00+00:00"))
    b = draw_review_set(_pool(200), 10, 0.2, segment_rng(5, "m", "a", "2026-01-01T00:00:00+00:00"))
    c = draw_review_set(_pool(200), 10, 0.2, segment_rng(5, "m", "b", "2026-01-01T00:00:00+00:00"))
    assert a == b
    assert a.items != c.items


def test_empty_pools_and_bad_inputs():
    assert draw_review_set([], 10, 0.2, np.random.default_rng(0)).items == ()
    with pytest.raises(ValueError, match="pool_probability"):
        draw_review_set([("r", 0.0)], 10, 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="double_share"):
        draw_review_set([("r", 0.5)], 10, 1.5, np.random.default_rng(0))
