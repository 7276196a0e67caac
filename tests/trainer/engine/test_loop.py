"""Class-balanced sampling (``train.balance_classes``): the weights, the weighted ``EpochSampler`` and the loader."""

from collections import Counter

import pytest

from trainer.engine import EpochSampler, class_balanced_weights, make_loader

TARGETS = [0] * 900 + [1] * 100  # 10 % malignant, like a per-patch set with little IDC


def test_class_balanced_weights_give_each_class_the_same_total():
    w = class_balanced_weights(TARGETS)
    assert len(w) == len(TARGETS)
    assert w[0] == pytest.approx(1 / 900) and w[-1] == pytest.approx(1 / 100)
    assert sum(w[:900]) == pytest.approx(1.0) and sum(w[900:]) == pytest.approx(1.0)
    assert class_balanced_weights([2, 0, 2]) == pytest.approx([0.5, 1.0, 0.5])  # any class indices


def test_weighted_sampler_draws_classes_about_equally_and_replays_each_epoch():
    sampler = EpochSampler(len(TARGETS), seed=3, shuffle=True, weights=class_balanced_weights(TARGETS))
    assert len(sampler) == len(TARGETS)
    sampler.set_epoch(0)
    first = list(sampler)
    assert len(first) == len(TARGETS) and all(0 <= i < len(TARGETS) for i in first)
    drawn = Counter(TARGETS[i] for i in first)
    assert abs(drawn[1] / len(first) - 0.5) < 0.06  # about half malignant, against 10 % in the data
    assert list(sampler) == first  # the same (seed, epoch): the same order (a resumed epoch replays it)
    again = EpochSampler(len(TARGETS), seed=3, shuffle=True, weights=class_balanced_weights(TARGETS))
    again.set_epoch(0)
    assert list(again) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and abs(Counter(TARGETS[i] for i in second)[1] / len(second) - 0.5) < 0.06
    other = EpochSampler(len(TARGETS), seed=4, shuffle=True, weights=class_balanced_weights(TARGETS))
    assert list(other) != first


def test_unweighted_sampler_is_a_permutation_and_evaluation_keeps_the_order():
    sampler = EpochSampler(50, seed=1, shuffle=True)
    assert sorted(sampler) == list(range(50)) and list(sampler) != list(range(50))
    assert list(EpochSampler(50, seed=1, shuffle=False, weights=[1.0] * 50)) == list(range(50))


class _Targets:
    """A dataset stand-in: the loader only needs its length and targets here."""

    targets = TARGETS

    def __len__(self):
        return len(TARGETS)


@pytest.mark.parametrize("balance,train,weighted", [(True, True, True), (True, False, False), (False, True, False)])
def test_loader_balances_training_only_when_asked(balance, train, weighted):
    loader = make_loader(_Targets(), adapter=None, batch_size=8, train=train, seed=0, balance=balance)
    assert (loader.sampler.weights is not None) == weighted
