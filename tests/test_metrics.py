import pytest

from ser_hf.metrics import compute_ser_metrics, plot_confusion_matrix, trainer_compute_metrics


def test_hand_computed_imbalanced_case():
    # references: 6 of class 0, 2 of class 1, 2 of class 2
    refs = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
    preds = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    m = compute_ser_metrics(preds, refs, num_labels=3)
    assert m["confusion_matrix"] == [[6, 0, 0], [1, 1, 0], [2, 0, 0]]
    assert m["wa"] == pytest.approx(7 / 10)
    assert m["ua"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    # F1: class 0 p=6/9 r=1 -> 0.8; class 1 p=1 r=.5 -> 2/3; class 2 -> 0
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)
    assert m["per_class_recall"] == pytest.approx([1.0, 0.5, 0.0])
    assert m["support"] == [6, 2, 2]


def test_classes_absent_from_references_are_left_out_of_ua():
    m = compute_ser_metrics([0, 1, 2, 2], [0, 1, 1, 1], num_labels=4)
    assert m["ua"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert m["per_class_recall"][2] is None and m["per_class_recall"][3] is None


def test_perfect_and_trainer_adapter():
    import numpy as np
    from transformers import EvalPrediction

    logits = np.eye(3)[[0, 1, 2, 1]]
    out = trainer_compute_metrics(3)(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 2, 1])))
    assert out == {"wa": 1.0, "ua": 1.0, "macro_f1": 1.0}


def test_confusion_matrix_png(tmp_path):
    plot_confusion_matrix([[3, 1], [0, 4]], ["angry", "calm"], tmp_path / "cm.png", title="t")
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
