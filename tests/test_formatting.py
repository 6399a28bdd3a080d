"""One way to print a value, shared by every reporter; hand-worked expectations."""

import doctest
import math

import pytest

from losslens import formatting as fmt


def test_doctests():
    assert doctest.testmod(fmt).failed == 0


@pytest.mark.parametrize("value, text", [
    (0.123456, "0.1235"), (-0.0, "0.0000"), (0.0, "0.0000"), (-1e-20, "-1.00e-20"), (2.3e-7, "2.30e-07"),
    (-0.00005, "-0.0001"), (-0.000049, "-4.90e-05"), (None, "—"), (math.nan, "—"), (math.inf, "∞"), (-math.inf, "−∞"),
])
def test_number_never_prints_negative_zero_and_keeps_tiny_values(value, text):
    assert fmt.number(value) == text


def test_missing_is_one_character_everywhere():
    assert {fmt.number(None), fmt.count(None), fmt.percent(None), fmt.signed(None), fmt.points(None),
            fmt.interval((math.nan, 1.0)), fmt.signed_interval((None, 1.0))} == {fmt.MISSING} == {"—"}


@pytest.mark.parametrize("n, text", [(0, "0 examples"), (1, "1 example"), (2, "2 examples"), (1000, "1,000 examples")])
def test_plural(n, text):
    assert fmt.plural(n, "example") == text


@pytest.mark.parametrize("value, warning, delta, text", [
    (0.0837133412, False, False, "0.0837133"), (0.0837133412, False, True, "+0.0837133"),
    (-0.02, False, True, "-0.02"), (-0.0, False, True, "+0"), (3.0, True, False, "3"),
    (None, False, False, "undefined"), (math.nan, False, True, "undefined"),
])
def test_gate_value_is_one_format(value, warning, delta, text):
    assert fmt.gate_value(value, warning=warning, delta=delta) == text


def test_values_and_changes_follow_the_catalog():
    assert fmt.value("accuracy", 0.91234) == "91.23%" and fmt.change("accuracy", 0.0125) == "+1.25 pp"
    assert fmt.value("perplexity", 2.0) == "2.000" and fmt.change("perplexity", -0.5) == "-0.500"
    assert fmt.value("n_examples", 12345) == "12,345" and fmt.change("n_clipped", -2) == "-2"
    assert fmt.value("log_loss_ci95", (0.1, 0.2)) == "0.1000–0.2000"


def test_control_characters_are_made_visible_and_text_kept():
    assert fmt.visible("a\x1b[2Jb\x07c\x00") == "a\\x1b[2Jb\\x07c\\x00"
    assert fmt.visible("evil\u202etxt.exe") == "evil\\u202etxt.exe"  # a bidi override cannot reorder the line
    assert fmt.visible("שלום") == "שלום" and fmt.visible("🐈 cat") == "🐈 cat"
    assert fmt.visible("a\nb", keep="\n") == "a\nb" and fmt.visible("a\nb") == "a\\x0ab"


def test_shorten_counts_terminal_columns():
    assert fmt.width("🐈🐈") == 4 and fmt.width("猫") == 2 and fmt.width("é") == 1
    short = fmt.shorten("🐈" * 30, 10)
    assert short == "🐈🐈🐈🐈…" and fmt.width(short) <= 10
    long = "x" * 10_000
    assert fmt.shorten(long) == "x" * (fmt.NAME_WIDTH - 1) + "…"


def test_intervals_follow_the_catalog():
    assert fmt.interval_of("accuracy", (0.9, 0.95)) == "90.00%–95.00%"
    assert fmt.interval_of("ece", (0.01, 0.02)) == "0.0100–0.0200"
    assert fmt.change("n_clipped", 3) == "+3" and fmt.change("log_loss", 0.0123) == "+0.0123"
