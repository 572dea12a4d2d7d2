"""The same pairing cases through both synchronizers the node can use (ros/input_sync.py).

message_filters is the real Python module: the installed one, else the source in
../shared/ros2_src/message_filters (skipped when neither is there). Each case lists the sets it must
give; where the two synchronizers differ by design, the case names the difference and what each
one gives (see the ros/input_sync.py docstring).
"""
import importlib
import os
import random
import sys

import pytest
from sensor_msgs.msg import Image

from ros2_depth_interp.core.sync import ApproximateTimeSynchronizer
from ros2_depth_interp.ros import input_sync

from node_helpers import REPO

SHARED_MESSAGE_FILTERS = os.path.join(os.path.dirname(REPO), 'shared', 'ros2_src', 'message_filters', 'src')


@pytest.fixture
def real_message_filters(monkeypatch):
    """The real message_filters module, for this test only (the node elsewhere in this process
    keeps the synchronizer it found at import)."""
    cached = 'message_filters' in sys.modules
    try:
        module = importlib.import_module('message_filters')
    except ImportError:
        if not os.path.isdir(SHARED_MESSAGE_FILTERS):
            pytest.skip('message_filters is not installed and %s is missing' % SHARED_MESSAGE_FILTERS)
        monkeypatch.syspath_prepend(SHARED_MESSAGE_FILTERS)
        module = importlib.import_module('message_filters')
    monkeypatch.setattr(input_sync, 'message_filters', module)
    yield module
    if not cached:
        sys.modules.pop('message_filters', None)


def message(label, stamp_ms):
    """A real sensor_msgs/Image carrying the stamp; its frame_id names it."""
    msg = Image()
    stamp_ns = int(round(stamp_ms * 1e6))
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_ns // 10**9, stamp_ns % 10**9
    msg.header.frame_id = label
    return msg, stamp_ns


def run(sync, events):
    """events: (input index, label, stamp in ms); returns every emitted set as a tuple of labels."""
    sets = []
    for index, label, stamp_ms in events:
        msg, stamp_ns = message(label, stamp_ms)
        sets.extend(tuple(m.header.frame_id for m in found) for found in sync.add(index, stamp_ns, msg))
    return sets


def make(kind, num_inputs, slop_s, queue_size=10):
    if kind == 'own':
        return ApproximateTimeSynchronizer(num_inputs, queue_size=queue_size, slop=slop_s)
    return input_sync.MessageFiltersSynchronizer(num_inputs, queue_size=queue_size, slop=slop_s)


# (name, inputs, slop s, events, the sets both give, {synchronizer: (its sets, why it differs)})
CASES = [
    ('exact_stamps_two_inputs', 2, 0.05,
     [(0, 'a0', 0), (1, 'b0', 0), (1, 'b100', 100), (0, 'a100', 100)],
     [('a0', 'b0'), ('a100', 'b100')], {}),
    ('exact_stamps_three_inputs_any_order', 3, 0.01,
     [(1, 'i0', 0), (2, 'm0', 0), (0, 'd0', 0), (0, 'd33', 33), (2, 'm33', 33), (1, 'i33', 33)],
     [('d0', 'i0', 'm0'), ('d33', 'i33', 'm33')], {}),
    ('a_lost_message_leaves_its_partners_unpaired', 3, 0.01,
     [(0, 'd0', 0), (1, 'i0', 0), (0, 'd33', 33), (1, 'i33', 33), (2, 'm33', 33)],
     [('d33', 'i33', 'm33')], {}),
    ('jittered_stamps_within_slop', 2, 0.05,
     [(0, 'a0', 0), (1, 'b10', 10), (0, 'a100', 100), (1, 'b110', 110), (0, 'a200', 200), (1, 'b205', 205),
      (0, 'a300', 300)],
     [('a0', 'b10'), ('a100', 'b110'), ('a200', 'b205')], {}),
    ('stamps_beyond_slop_never_pair', 2, 0.05,
     [(0, 'a0', 0), (1, 'b100', 100), (0, 'a200', 200), (1, 'b300', 300)],
     [], {}),
    ('the_closer_of_two_candidates', 2, 0.05,
     [(0, 'a0', 0), (1, 'b30', 30), (0, 'a40', 40), (1, 'b100', 100), (0, 'a110', 110), (1, 'b200', 200)],
     [('a40', 'b30'), ('a110', 'b100')],
     {'message_filters': ([('a0', 'b30'), ('a110', 'b100')],
                          'pairs as soon as a set lies within slop (a0 with b30, span 30 ms) instead of '
                          'waiting for the smallest span (a40 with b30, 10 ms)')}),
    ('a_span_of_exactly_slop', 2, 0.05,
     [(0, 'a0', 0), (1, 'b50', 50), (0, 'a200', 200)],
     [('a0', 'b50')],
     {'message_filters': ([], 'slop is exclusive there (span < slop), inclusive in ours')}),
    ('a_message_older_than_the_last_on_its_input', 2, 0.01,
     [(0, 'a100', 100), (0, 'a50', 50), (1, 'b50', 50)],
     [],
     {'message_filters': ([('a50', 'b50')], 'accepts stamps out of order; ours drops a50 as out_of_order')}),
]


@pytest.mark.parametrize('kind', ['own', 'message_filters'])
@pytest.mark.parametrize('name, num_inputs, slop, events, both, differences', CASES, ids=[c[0] for c in CASES])
def test_the_same_pairing_cases_through_both_synchronizers(real_message_filters, kind, name, num_inputs, slop,
                                                           events, both, differences):
    expected = differences[kind][0] if kind in differences else both
    assert run(make(kind, num_inputs, slop), events) == expected


@pytest.mark.parametrize('seed', range(4))
def test_a_long_stream_with_exact_stamps_pairs_the_same(real_message_filters, seed):
    """Three inputs with their own latency and jitter, a few messages lost: the node's usual case
    (SLAM outputs share the keyframe's stamp). Both give the same sets, in the same order."""
    rng = random.Random(seed)
    latency = [rng.uniform(0, 20) for _ in range(3)]
    arrivals = []
    for frame in range(120):
        stamp = frame * 33.0
        for index in range(3):
            if rng.random() < 0.05:
                continue
            arrivals.append((stamp + latency[index] + rng.uniform(0, 10), index, 'f%d_%d' % (frame, index), stamp))
    events = [(index, label, stamp) for _, index, label, stamp in sorted(arrivals)]
    own = run(make('own', 3, 0.01, queue_size=20), events)
    theirs = run(make('message_filters', 3, 0.01, queue_size=20), events)
    assert own == theirs and len(own) > 80


def test_message_filters_losses_are_counted(real_message_filters):
    sync = make('message_filters', 2, 0.01, queue_size=2)
    run(sync, [(0, 'a0', 0), (0, 'a100', 100), (0, 'a200', 200), (0, 'a200bis', 200)])
    assert sync.dropped == {'queue_overflow': 1, 'replaced': 1} and sync.pending == 2
    assert run(sync, [(1, 'b200', 200)]) == [('a200bis', 'b200')] and sync.emitted == 1
    sync.reset()
    assert sync.dropped['reset'] == 1 and sync.pending == 0


def test_the_node_picks_message_filters_when_it_can_be_imported(real_message_filters, monkeypatch):
    assert input_sync.make_synchronizer(2, 10, 0.05).name == 'message_filters'
    monkeypatch.setattr(input_sync, 'message_filters', None)
    assert input_sync.make_synchronizer(2, 10, 0.05).name == 'own'
