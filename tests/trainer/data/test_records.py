"""The record vocabularies and the one rule for malignant classes."""


def test_one_rule_says_which_classes_are_malignant():
    from trainer.data.records import LABELS, SUBTYPE_LABEL, SUBTYPES, is_malignant, malignant_columns, malignant_truth

    assert malignant_columns(LABELS) == [1]
    assert [SUBTYPES[i] for i in malignant_columns(SUBTYPES)] == ["DC", "LC", "MC", "PC"]
    assert all(is_malignant(s) == bool(SUBTYPE_LABEL[s]) for s in SUBTYPES)
    assert not is_malignant("benign") and not is_malignant("Normal")
    assert malignant_truth([0, 3, 4, 7, -1], SUBTYPES) == [0, 0, 1, 1, 0] and malignant_truth([1, 0], LABELS) == [1, 0]
