"""Stratified splits: assigned once, per label, and right at every size."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from django.db import transaction

from collector import splits
from collector.models import SplitCounter


def test_largest_deficit_keeps_every_label_within_one_of_its_share():
    # given 2,000 inserts of one label, one at a time
    counts = Counter()
    for i in range(2000):
        sha = hashlib.sha256(str(i).encode()).hexdigest()
        counts[splits.choose_split(dict(counts), sha)] += 1
        n = i + 1
        # then after every single insert each split is within one drawing of its share
        for split, share in splits.shares().items():
            assert abs(counts[split] - share * n) < 1.0, (n, dict(counts))
    assert dict(counts) == {"train": 1600, "val": 200, "test": 200}


def test_the_choice_is_deterministic_given_the_drawing_and_the_counts():
    sha = hashlib.sha256(b"x").hexdigest()
    assert {splits.choose_split({}, sha) for _ in range(20)} == {splits.choose_split({}, sha)}


@pytest.mark.django_db
def test_claims_are_counted_per_label_and_rolled_back_with_the_insert():
    with transaction.atomic():
        for i in range(10):
            splits.claim_split(3, hashlib.sha256(str(i).encode()).hexdigest())
    counter = SplitCounter.objects.get(label=3)
    assert (counter.train, counter.val, counter.test) == (8, 1, 1)
    try:
        with transaction.atomic():
            splits.claim_split(3, "0" * 64)
            raise RuntimeError("insert failed")
    except RuntimeError:
        pass
    counter.refresh_from_db()
    assert counter.train + counter.val + counter.test == 10


def test_configurable_shares(settings):
    settings.DIGITS_SPLIT_SHARES = {"train": 70, "val": 15, "test": 15}
    counts = Counter()
    for i in range(200):
        counts[splits.choose_split(dict(counts), hashlib.sha256(str(i).encode()).hexdigest())] += 1
    assert dict(counts) == {"train": 140, "val": 30, "test": 30}
