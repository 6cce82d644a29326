"""Length buckets of the optimized transformer (optimize/buckets.py): the
grouping is the cheapest one, and running a padded batch group by group
gives the one call's outputs at every real word piece."""

import itertools

import pytest
import torch

from spacy_spanbert.optimize.buckets import LengthBuckets, length_groups


def _cost(groups, extents, call_cost):
    return sum(len(g) * max(extents[i] for i in g) + call_cost for g in groups)


def _partitions(items):
    """Every set partition of `items`."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _partitions(rest):
        yield [[first]] + partition
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1 :]


@pytest.mark.parametrize("call_cost", [0, 3, 10, 1000])
def test_length_groups_are_the_cheapest_partition(call_cost):
    for extents in ([5, 1, 9, 9, 2, 30], [4, 4, 4], [7], [1, 100, 2, 99, 3, 98]):
        groups = length_groups(extents, call_cost)
        assert sorted(itertools.chain(*groups)) == list(range(len(extents)))
        best = min(_cost(p, extents, call_cost) for p in _partitions(list(range(len(extents)))))
        assert _cost(groups, extents, call_cost) == best


def test_length_groups_keep_equal_extents_together():
    """Rows of one extent are one run of the dynamic program: a long doc's
    thousands of windows of the same length cost no more to group than one."""
    extents = [128] * 20000 + [7, 7, 30] * 1000
    groups = length_groups(extents, call_cost=64)
    assert sorted(itertools.chain(*groups)) == list(range(len(extents)))
    by_extent = {}
    for g, group in enumerate(groups):
        for i in group:
            by_extent.setdefault(extents[i], set()).add(g)
    assert all(len(found) == 1 for found in by_extent.values())


def test_length_groups_extremes():
    assert length_groups([]) == []
    assert length_groups([3, 1, 2], call_cost=0) == [[1], [2], [0]]
    assert length_groups([3, 1, 2], call_cost=10**6) == [[1, 2, 0]]


@pytest.fixture(scope="module")
def bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return BertModel(config).eval()


def _batch(lengths, width, left=False):
    torch.manual_seed(1)
    ids = torch.randint(5, 50, (len(lengths), width))
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        if left:
            mask[row, width - n :] = 1
        else:
            mask[row, :n] = 1
    return ids * mask, mask


@pytest.mark.parametrize("output_hidden_states,output_attentions", [(False, False), (True, True)])
def test_buckets_give_the_batched_outputs_at_real_pieces(bert, output_hidden_states, output_attentions):
    lengths = [3, 40, 7, 40, 2, 12, 39, 1] * 8
    ids, mask = _batch(lengths, 40)
    options = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask, **options)
        got = LengthBuckets(bert)(ids, mask, **options)
    assert len(length_groups(lengths)) > 1  # the batch really is split
    real = mask.bool()
    assert set(got.keys()) == set(expected.keys())
    torch.testing.assert_close(got.last_hidden_state[real], expected.last_hidden_state[real], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, rtol=1e-4, atol=1e-5)
    if output_hidden_states:
        for a, b in zip(got.hidden_states, expected.hidden_states):
            torch.testing.assert_close(a[real], b[real], rtol=1e-4, atol=1e-5)
        for a, b in zip(got.attentions, expected.attentions):
            # Weights of real queries on keys: padding keys get none either way.
            keys = real[:, None, None, :].expand_as(a) & real[:, None, :, None].expand_as(a)
            torch.testing.assert_close(a[keys], b[keys], rtol=1e-4, atol=1e-5)


def test_buckets_leave_left_padded_rows_uncut(bert):
    """Left padding (position ids from the left) must not be cut away."""
    ids, mask = _batch([3, 9, 1], 9, left=True)
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = LengthBuckets(bert)(ids, mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-4, atol=1e-5)


def test_buckets_refuse_an_output_they_cannot_assemble():
    class Odd(torch.nn.Module):
        config = None

        def forward(self, input_ids, attention_mask):
            from dataclasses import dataclass

            from transformers.utils import ModelOutput

            @dataclass
            class Out(ModelOutput):
                logits: torch.Tensor = None

            return Out(logits=input_ids.float())

    ids, mask = _batch([2, 3], 3)
    with pytest.raises(ValueError, match="E710.*'logits'.*transformer_config"):
        LengthBuckets(Odd())(ids, mask)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_concurrent_buckets_give_the_sequential_outputs(bert, two_threads):
    lengths = [3, 40, 7, 40, 2, 12, 39, 1] * 8
    ids, mask = _batch(lengths, 40)
    with torch.no_grad():
        one_by_one = LengthBuckets(bert)(ids, mask)
        concurrent = LengthBuckets(bert, concurrent=True)(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(concurrent.last_hidden_state[real], one_by_one.last_hidden_state[real])
    torch.testing.assert_close(concurrent.pooler_output, one_by_one.pooler_output)


class _Recorder(torch.nn.Module):
    """A stand-in encoder that records the rows and thread of every call."""

    config = None

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, input_ids, attention_mask):
        import threading

        from transformers.modeling_outputs import BaseModelOutput

        self.calls.append((input_ids.shape[0], threading.current_thread().name))
        return BaseModelOutput(last_hidden_state=input_ids[..., None].float())


def test_concurrent_buckets_split_one_long_group_over_the_threads(two_threads):
    """One long doc (many windows of the same length) still uses every thread."""
    ids, mask = _batch([128] * 10, 128)
    encoder = _Recorder()
    out = LengthBuckets(encoder, concurrent=True)(ids, mask)
    assert sorted(n for n, _ in encoder.calls) == [5, 5]
    assert all(name.startswith("spanbert-onnx") for _, name in encoder.calls)
    torch.testing.assert_close(out.last_hidden_state[..., 0], ids.float())
    encoder.calls.clear()
    LengthBuckets(encoder)(ids, mask)
    assert [n for n, _ in encoder.calls] == [10]
