"""Column layout detection: by name, overridable, and reported."""

import re

import pytest

from losslens.errors import InputError, UsageError
from losslens.options import Options
from losslens.schema import LOGITS, POSITIVE_PROB, PROBS, class_key, detect_layout


def detect(columns, labels=None, **options):
    return detect_layout(columns, Options(**options), "f.csv", scan_labels=lambda col: [(v, "f.csv", i + 1) for i, v in enumerate(labels or [])])


@pytest.mark.parametrize(
    "a, b",
    [(1, "1"), ("1.0", "1"), (1.0, "1"), (True, "1"), ("True", "1"), (False, "0"), ("0.50", "0.5"), (" cat ", "cat")],
)
def test_class_key_compares_numbers_as_numbers(a, b):
    assert class_key(a) == class_key(b)


def test_class_key_keeps_distinct_names_apart():
    assert class_key("cat") != class_key("Cat")
    assert class_key("1") != class_key("10")


def test_probability_columns_are_matched_by_name_not_position():
    layout = detect(["p_dog", "label", "p_bird", "p_cat"])
    assert layout.kind == PROBS
    # Classes keep the order of the columns in the file, as a model's classes_ would.
    assert layout.classes == ("dog", "bird", "cat")
    assert layout.prediction_columns == ("p_dog", "p_bird", "p_cat")
    assert layout.label == "label"


def test_numeric_classes_keep_the_file_order():
    layout = detect(["y", "p_10", "p_2", "p_1.0"])
    assert layout.classes == ("10", "2", "1.0")
    assert layout.label == "y"


def test_classes_option_still_sets_the_order():
    layout = detect(["y", "p_10", "p_2", "p_1.0"], classes="1,2,10")
    assert layout.classes == ("1.0", "2", "10")
    assert layout.prediction_columns == ("p_1.0", "p_2", "p_10")


@pytest.mark.parametrize("prefix", ["p_", "prob_", "proba_", "prob_of_"])
def test_every_default_prefix_is_detected(prefix):
    layout = detect(["label", f"{prefix}a", f"{prefix}b"])
    assert layout.classes == ("a", "b")
    assert any(prefix in note for note in layout.notes)


def test_longest_prefix_claims_its_columns():
    layout = detect(["label", "prob_of_a", "prob_of_b"])
    assert layout.classes == ("a", "b")


def test_label_default_order():
    assert detect(["target", "y_true", "p_a", "p_b"]).label == "y_true"


def test_logits_detected_and_probabilities_preferred_with_a_note():
    assert detect(["label", "logit_a", "logit_b"]).kind == LOGITS
    both = detect(["label", "logit_a", "logit_b", "p_a", "p_b"])
    assert both.kind == PROBS
    assert any("--logits" in note for note in both.notes)


def test_explicit_column_list_and_prefix():
    assert detect(["y", "cat", "dog"], label="y", probs="cat,dog").classes == ("cat", "dog")
    assert detect(["y", "s_cat", "s_dog"], label="y", probs="s_").classes == ("cat", "dog")


def test_declared_classes_set_the_order():
    layout = detect(["label", "p_a", "p_b", "p_c"], classes=("c", "a", "b"))
    assert layout.classes == ("c", "a", "b")
    assert layout.prediction_columns == ("p_c", "p_a", "p_b")


def test_one_column_binary_positive_is_the_greater_label():
    layout = detect(["label", "y_prob"], labels=["0", "1"])
    assert layout.kind == POSITIVE_PROB
    assert layout.classes == ("0", "1")
    assert layout.positive_index == 1


def test_one_column_binary_string_labels_and_positive_label():
    layout = detect(["label", "score"], labels=["spam", "ham"], positive_label="ham")
    assert layout.classes == ("ham", "spam")
    assert layout.positive_index == 0


def test_one_column_binary_with_one_observed_class_assumes_0_1():
    layout = detect(["label", "p"], labels=["1"])
    assert layout.classes == ("0", "1")


def test_one_column_binary_with_three_classes_is_an_error():
    with pytest.raises(InputError, match="f.csv, column 'label', row 3: label 'c' is a third class"):
        detect(["label", "y_prob"], labels=["a", "b", "c"])


def test_soft_targets_replace_the_label():
    layout = detect(["t_a", "t_b", "p_a", "p_b"], targets="t_")
    assert layout.label is None
    assert layout.target_columns == ("t_a", "t_b")


def test_split_column_detected_and_reported():
    layout = detect(["label", "p_a", "p_b", "split"])
    assert layout.split == "split"
    assert any("split" in note for note in layout.notes)


def test_missing_label_column_lists_columns_and_fixes():
    with pytest.raises(InputError) as info:
        detect(["truth", "p_a", "p_b"])
    message = str(info.value)
    assert "'truth'" in message and "--label" in message and "f.csv" in message


def test_option_naming_a_missing_column():
    with pytest.raises(InputError, match=r"column 'w' \(from --weight\) not found"):
        detect(["label", "p_a", "p_b"], weight="w")


def test_contradictory_layout_options_are_a_usage_error():
    with pytest.raises(UsageError, match="--probs and --logits"):
        Options(probs="p_", logits="logit_")


def test_layout_to_dict_reports_columns_by_class():
    data = detect(["label", "p_b", "p_a"]).to_dict()
    assert data["prediction_columns"] == {"a": "p_a", "b": "p_b"}
    assert data["kind"] == "probabilities"


def test_id_column_detected_and_reported():
    layout = detect(["id", "label", "p_a", "p_b"])
    assert layout.id == "id"
    assert any("id column 'id'" in note for note in layout.notes)
    assert detect(["label", "p_a", "p_b"]).id is None


def test_columns_named_after_the_classes_need_every_label():
    layout = detect(["label", "setosa", "versicolor", "virginica"], labels=["setosa", "virginica"])
    assert layout.kind == PROBS
    # Only the labels' columns: a text-named column no label uses is not a class.
    assert layout.classes == ("setosa", "virginica")
    with pytest.raises(InputError, match="no prediction columns"):
        detect(["label", "setosa", "versicolor"], labels=["setosa", "virginica"])


def test_numeric_class_columns_include_classes_absent_from_the_labels():
    layout = detect(["label", "0", "1", "2"], labels=[0, 2])
    assert layout.classes == ("0", "1", "2")


def test_class_named_columns_must_be_numeric():
    with pytest.raises(InputError, match="no prediction columns"):
        detect_layout(["label", "a", "b"], Options(), "f.csv",
                      scan_labels=lambda col: [("a", "f.csv", 1), ("b", "f.csv", 2)],
                      numeric_columns=["label"])


def test_lone_class_probability_column_is_a_binary_layout():
    layout = detect(["label", "p_churn"], labels=["stay", "churn"])
    assert layout.kind == POSITIVE_PROB
    assert layout.classes[layout.positive_index] == "churn"
    assert "one-column binary layout: 'p_churn' is P('churn')" in layout.notes


@pytest.mark.parametrize("labels", [[0, 1], [False, True], [-1, 1], ["0", "1"]])
def test_ordered_binary_labels_make_the_greater_positive(labels):
    layout = detect(["label", "y_prob"], labels=labels)
    assert class_key(layout.classes[layout.positive_index]) == "1"


def test_unordered_binary_labels_are_refused():
    message = (
        "f.csv: column 'y_prob' holds one probability, but the labels 'ham' and 'spam' have no "
        "natural order, so it could be P('ham') or P('spam'); say which with "
        "--positive-label spam (or --positive-label ham)"
    )
    with pytest.raises(InputError, match=re.escape(message)):
        detect(["label", "y_prob"], labels=["spam", "ham"])
    layout = detect(["label", "y_prob"], labels=["spam", "ham"], positive_label="ham")
    assert layout.classes[layout.positive_index] == "ham"


def test_layout_records_eps_and_row_sum_tolerance():
    d = detect(["label", "p_a", "p_b"]).to_dict()
    assert d["eps"] == 2.0**-52
    assert d["row_sum_tolerance"] == 2.0**-26  # sqrt of an even power of two is exact


def test_two_columns_for_one_class_are_refused():
    """p_1 and p_01 are both class 1 (numbers compare as numbers): neither may silently win."""
    with pytest.raises(InputError, match=re.escape("f.csv: columns 'p_1' and 'p_01' are both for class '01'")):
        detect(["label", "p_1", "p_01"])


def test_eps_follows_the_prediction_dtype_as_sklearn():
    import numpy as np

    from losslens.tolerances import with_input_dtype

    layout = detect(["label", "p_a", "p_b"])
    f32 = with_input_dtype(layout, [np.dtype(np.float32)] * 2)
    assert f32.eps == 2.0**-23
    # sqrt and pow may round the last bit differently: compare within an ulp or two.
    assert f32.row_sum_tolerance == pytest.approx(2.0**-11.5, rel=1e-15)
    assert with_input_dtype(layout, [np.dtype(np.float32), np.dtype(np.float64)]).eps == 2.0**-52
    assert with_input_dtype(layout, [np.dtype(np.float16)] * 2).eps == 2.0**-10
