"""The report writes numbers to significant digits, with their panel's unit."""

import doctest
from decimal import Decimal

import parrotwatch.report as report


def test_doctests_of_the_report_pass():
    result = doctest.testmod(report)
    assert result.attempted >= 6 and result.failed == 0


def test_postgresql_numeric_values_are_rounded_too():
    assert report._fmt(Decimal("4.6510256410256410"), "reqps") == "4.651 req/s"
    assert report._fmt(Decimal("0.04154173254102382380")) == "0.04154"
    assert report._fmt(12, "ms") == "12" and report._fmt(True) == "True"
