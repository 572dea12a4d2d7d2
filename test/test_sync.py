"""ApproximateTime synchronizer against hand-worked pairings, and the newest-set mailbox."""
import random
import threading
import time

import pytest

from ros2_depth_interp.core.sync import DROP_REASONS, ApproximateTimeSynchronizer, LatestSetMailbox


def ms(value):
    return int(round(value * 1_000_000))


def feed(sync, events):
    """events: (input index, stamp in ms, item); returns the output of each add()."""
    return [sync.add(index, ms(stamp), item) for index, stamp, item in events]


def test_exact_match_two_inputs_emits_when_last_arrives():
    sync = ApproximateTimeSynchronizer(2, queue_size=10, slop=0.05)
    assert sync.add(0, ms(0), 'a0') == []
    assert sync.add(1, ms(0), 'b0') == [('a0', 'b0')]
    # the other arrival order gives the same set, still in input order
    assert sync.add(1, ms(100), 'b1') == []
    assert sync.add(0, ms(100), 'a1') == [('a1', 'b1')]
    assert sync.pending == 0 and sum(sync.dropped.values()) == 0 and sync.emitted == 2


def test_exact_match_three_inputs_needs_all_three():
    sync = ApproximateTimeSynchronizer(3, slop=0.01)
    assert feed(sync, [(1, 0, 'i0'), (2, 0, 'm0')]) == [[], []]
    assert sync.add(0, ms(0), 'd0') == [('d0', 'i0', 'm0')]
    assert feed(sync, [(0, 33, 'd1'), (2, 33, 'm1'), (1, 33, 'i1')]) == [[], [], [('d1', 'i1', 'm1')]]


def test_jittered_stamps_hand_worked():
    # A at 0, 100, 200 ms; B at 10, 110, 205 ms. With no rate bounds the policy can only be sure
    # that (a0, b10) is optimal once the next A arrives (A at 100 cannot beat a span of 10 ms).
    sync = ApproximateTimeSynchronizer(2, slop=0.05)
    out = feed(sync, [(0, 0, 'a0'), (1, 10, 'b10'), (0, 100, 'a100'), (1, 110, 'b110'),
                      (0, 200, 'a200'), (1, 205, 'b205')])
    assert out == [[], [], [('a0', 'b10')], [], [('a100', 'b110')], []]
    assert sync.pending == 2 and sum(sync.dropped.values()) == 0


def test_rate_bound_lets_it_emit_without_waiting():
    # With A known to be >= 90 ms apart, A's next stamp is >= 290 ms: (a200, b205) is provably best.
    sync = ApproximateTimeSynchronizer(2, slop=0.05, inter_message_lower_bounds=[0.09, 0.0])
    out = feed(sync, [(0, 0, 'a0'), (1, 10, 'b10'), (0, 200, 'a200'), (1, 205, 'b205')])
    assert out == [[], [('a0', 'b10')], [], [('a200', 'b205')]]


def test_picks_the_set_with_the_smallest_span():
    # A0 and B30 form a candidate (span 30); A40 then gives (A40, B30) with span 10, so A0 is
    # never used and counted as stale.
    sync = ApproximateTimeSynchronizer(2, slop=0.1)
    out = feed(sync, [(0, 0, 'a0'), (1, 30, 'b30'), (0, 40, 'a40')])
    assert out == [[], [], [('a40', 'b30')]]
    assert sync.dropped == {'stale': 1}
    assert sync.pending == 0


def test_messages_beyond_slop_are_never_paired_and_counted():
    sync = ApproximateTimeSynchronizer(2, slop=0.05)
    out = feed(sync, [(0, 0, 'a0'), (1, 100, 'b100'), (0, 200, 'a200'), (1, 300, 'b300')])
    assert out == [[], [], [], []]
    assert sync.dropped['no_match_within_slop'] == 3   # a0, b100, a200
    assert sync.pending == 1
    # just inside the slop does pair; it is emitted once b420 shows nothing better can come
    assert sync.add(0, ms(349), 'a349') == []
    assert sync.add(0, ms(400), 'a400') == []
    assert sync.add(1, ms(420), 'b420') == [('a349', 'b300')]
    # (a400, b420) is now the candidate, waiting for proof it is the best
    assert sync.pending == 2


def test_slop_boundary_is_inclusive():
    sync = ApproximateTimeSynchronizer(2, slop=0.05)
    feed(sync, [(0, 0, 'a'), (1, 50, 'b')])
    assert sync.add(0, ms(1000), 'a2') == [('a', 'b')]


def test_queue_overflow_counted_and_recovery():
    sync = ApproximateTimeSynchronizer(2, queue_size=3, slop=0.05)
    out = feed(sync, [(0, t, f'a{t}') for t in (0, 100, 200, 300, 400)])
    assert out == [[]] * 5
    assert sync.dropped == {'queue_overflow': 2}
    # b400 matches a400 exactly; a200 and a300 are too far from it
    assert sync.add(1, ms(400), 'b400') == [('a400', 'b400')]
    assert sync.dropped == {'queue_overflow': 2, 'no_match_within_slop': 2}
    assert sync.pending == 0


def test_out_of_order_and_duplicate_stamps_dropped():
    sync = ApproximateTimeSynchronizer(2, slop=0.05)
    feed(sync, [(0, 0, 'a0'), (0, 100, 'a100')])
    assert sync.add(0, ms(50), 'late') == []
    assert sync.add(0, ms(100), 'dup') == []
    assert sync.dropped['out_of_order'] == 2
    assert sync.add(1, ms(100), 'b100') == [('a100', 'b100')]
    assert sync.dropped['no_match_within_slop'] == 1   # a0
    # older than the emitted set on the same input: discarded
    assert sync.add(1, ms(90), 'b90') == []
    assert sync.dropped['out_of_order'] == 3


def test_each_message_used_at_most_once():
    sync = ApproximateTimeSynchronizer(2, slop=0.05)
    out = feed(sync, [(0, 0, 'a0'), (1, 0, 'b0'), (1, 5, 'b5'), (0, 200, 'a200')])
    # b5 could pair with a0 but a0 is already used; a200 is too far from b5
    assert out == [[], [('a0', 'b0')], [], []]
    assert sync.dropped == {'no_match_within_slop': 1}


def test_three_inputs_with_jitter_hand_worked():
    # depth at 0, 100; intensity at 3, 98; mask at 1, 101 ms
    sync = ApproximateTimeSynchronizer(3, slop=0.02)
    out = feed(sync, [(1, 3, 'i3'), (0, 0, 'd0'), (2, 1, 'm1'),
                      (1, 98, 'i98'), (0, 100, 'd100'), (2, 101, 'm101'),
                      (1, 198, 'i198'), (0, 200, 'd200'), (2, 201, 'm201')])
    # (d0, i3, m1) pivots on i3 (the newest head). i98 only queues up behind i3; d100 makes every
    # queue non-empty again and no set containing it can span less than 3 ms, so the candidate is
    # emitted. Likewise (d100, i98, m101) pivots on m101 and is emitted when i198 arrives.
    assert out == [[], [], [], [], [('d0', 'i3', 'm1')], [], [('d100', 'i98', 'm101')], [], []]


def test_reset_counts_and_forgets_history():
    sync = ApproximateTimeSynchronizer(2)
    feed(sync, [(0, 500, 'a'), (0, 600, 'b')])
    sync.reset()
    assert sync.dropped['reset'] == 2 and sync.pending == 0
    # stamps earlier than before the reset are accepted again (e.g. a bag played in a loop)
    assert feed(sync, [(0, 0, 'a0'), (1, 0, 'b0')]) == [[], [('a0', 'b0')]]


def test_invalid_arguments():
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizer(0)
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizer(2, queue_size=0)
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizer(2, slop=-1)
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizer(2, inter_message_lower_bounds=[0.1])
    with pytest.raises(IndexError):
        ApproximateTimeSynchronizer(2).add(2, 0, 'x')


@pytest.mark.parametrize('num_inputs', [2, 3])
@pytest.mark.parametrize('seed', range(4))
def test_random_streams_keep_the_invariants(num_inputs, seed):
    """Jittered, lossy, reordered streams with a silent spell: every emitted set is within slop, uses
    each message once, is newer than the previous set on every input, and every message is
    accounted for (emitted, dropped or pending)."""
    rng = random.Random(seed)
    slop = 0.02
    queue_size = 5
    sync = ApproximateTimeSynchronizer(num_inputs, queue_size=queue_size, slop=slop)
    events = []
    for frame in range(200):
        for index in range(num_inputs):
            if rng.random() < 0.1 or (index == num_inputs - 1 and 80 <= frame < 100):
                continue      # lost message, or an input silent for a while (queues overflow)
            stamp = frame * 33_000_000 + rng.randint(-8_000_000, 8_000_000)
            events.append((stamp + rng.randint(0, 40_000_000), index, stamp))
    events.sort()             # arrival order, so stamps may come in slightly out of order
    stamps = {}
    sets = []
    for n, (_, index, stamp) in enumerate(events):
        item = (index, n)
        stamps[item] = stamp
        sets.extend(sync.add(index, stamp, item))
        assert all(len(q) + len(p) <= queue_size for q, p in zip(sync._queues, sync._past))
    used = [item for s in sets for item in s]
    assert len(used) == len(set(used))
    for s in sets:
        assert [item[0] for item in s] == list(range(num_inputs))
        times = [stamps[item] for item in s]
        assert max(times) - min(times) <= slop * 1e9
    for index in range(num_inputs):
        series = [stamps[s[index]] for s in sets]
        assert series == sorted(series) and len(set(series)) == len(series)
    assert len(sets) > 100
    assert sync.dropped['queue_overflow'] > 0 and sync.dropped['out_of_order'] > 0
    assert set(sync.dropped) <= set(DROP_REASONS)
    assert len(events) == len(used) + sum(sync.dropped.values()) + sync.pending


def test_mailbox_keeps_newest_and_counts_superseded():
    box = LatestSetMailbox()
    assert box.get(timeout=0) is None
    assert box.put('a') is False
    assert box.put('b') is True
    assert box.put('c') is True
    assert len(box) == 1
    assert box.get(timeout=0) == 'c'
    assert box.get(timeout=0.01) is None
    assert box.dropped == {'superseded': 2}
    assert box.put_count == 3 and box.delivered == 1


def test_mailbox_close_wakes_waiting_getter_and_drains():
    box = LatestSetMailbox()
    result = []
    getter = threading.Thread(target=lambda: result.append(box.get()))
    getter.start()
    time.sleep(0.05)
    box.close()
    getter.join(timeout=5)
    assert not getter.is_alive() and result == [None]
    closed = LatestSetMailbox()
    closed.put('last')
    closed.close()
    assert closed.get() == 'last' and closed.get() is None
    assert closed.put('after') is False and closed.dropped['closed'] == 1


def test_mailbox_across_threads():
    """A fast producer and a slow consumer: the consumer sees increasing items, and every put is
    either delivered or counted as superseded."""
    box = LatestSetMailbox()
    received = []
    total = 2000

    def consume():
        while True:
            item = box.get(timeout=5)
            if item is None:
                return
            received.append(item)
            time.sleep(0.0005)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(total):
        box.put(i)
        if i % 100 == 0:
            time.sleep(0.001)
    # let the consumer take the last item before closing
    deadline = time.monotonic() + 5
    while len(box) and time.monotonic() < deadline:
        time.sleep(0.001)
    box.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive()
    assert received == sorted(received) and received[-1] == total - 1
    assert len(received) + box.dropped['superseded'] == total
    assert box.dropped['superseded'] > 0


@pytest.mark.parametrize('num_inputs', [2, 3])
def test_lossless_jittered_stream_pairs_every_frame_with_itself(num_inputs):
    rng = random.Random(7)
    sync = ApproximateTimeSynchronizer(num_inputs, slop=0.02)
    sets = []
    for frame in range(50):
        order = list(range(num_inputs))
        rng.shuffle(order)
        for index in order:
            stamp = frame * 33_000_000 + rng.randint(-5_000_000, 5_000_000)
            sets.extend(sync.add(index, stamp, (frame, index)))
    # the last frame's set waits for proof that nothing better will arrive
    assert sets == [tuple((frame, i) for i in range(num_inputs)) for frame in range(49)]
    assert sum(sync.dropped.values()) == 0 and sync.pending == num_inputs


# --- exact-stamp shortcut ----------------------------------------------------------------------

class MessageFiltersPolicy(ApproximateTimeSynchronizer):
    """The plain message_filters search, without the span-0 shortcut (reference for comparison)."""
    exact_stamp_shortcut = False


def _arrival_orders(num_inputs, frames):
    """Every interleaving of ``frames`` frames' messages that keeps each input's own order (DDS
    delivers one topic in order, but topics overtake each other)."""
    import itertools
    slots = [index for index in range(num_inputs) for _ in range(frames)]
    seen = set()
    for order in itertools.permutations(slots):
        if order in seen:
            continue
        seen.add(order)
        next_frame = [0] * num_inputs
        events = []
        for index in order:
            events.append((index, next_frame[index]))
            next_frame[index] += 1
        yield events


@pytest.mark.parametrize('num_inputs', [2, 3])
def test_exact_stamps_emit_when_the_last_member_arrives_in_any_order(num_inputs):
    frames = 2 if num_inputs == 3 else 3
    orders = 0
    for events in _arrival_orders(num_inputs, frames):
        orders += 1
        sync = ApproximateTimeSynchronizer(num_inputs, slop=0.05)
        arrived = [0] * frames
        for index, frame in events:
            out = sync.add(index, ms(100 * frame), (frame, index))
            arrived[frame] += 1
            expected = [tuple((frame, i) for i in range(num_inputs))] if arrived[frame] == num_inputs else []
            assert out == expected, (events, index, frame)
        assert sync.pending == 0 and sum(sync.dropped.values()) == 0
    assert orders > 10


def test_exact_set_survives_an_overflow_on_the_pivot_input():
    # B overflows (b0 dropped); then a100 completes (a100, b100) with span 0. message_filters
    # drops a100 because the would-be pivot B lost a message; nothing can beat span 0, so the
    # shortcut emits the set at once.
    events = [(1, 0, 'b0'), (1, 100, 'b100'), (1, 200, 'b200'), (0, 100, 'a100')]
    plain = MessageFiltersPolicy(2, queue_size=2, slop=0.05)
    assert feed(plain, events)[-1] == []
    assert plain.dropped == {'queue_overflow': 1, 'no_match_after_overflow': 1}
    sync = ApproximateTimeSynchronizer(2, queue_size=2, slop=0.05)
    assert feed(sync, events)[-1] == [('a100', 'b100')]
    assert sync.dropped == {'queue_overflow': 1}
    assert sync.add(0, ms(200), 'a200') == [('a200', 'b200')]
    assert sync.pending == 0


@pytest.mark.parametrize('seed', range(6))
def test_shortcut_changes_nothing_else_without_overflow(seed):
    """Mixed streams (some frames with identical stamps, some jittered, some lost) and queues that
    never overflow: the output, event by event, is that of the message_filters search."""
    rng = random.Random(seed)
    num_inputs = 2 + seed % 2
    kwargs = dict(queue_size=1000, slop=0.02,
                  inter_message_lower_bounds=[0.02] * num_inputs if seed >= 4 else None)
    events = []
    for frame in range(150):
        exact = rng.random() < 0.5
        for index in range(num_inputs):
            if rng.random() < 0.08:
                continue
            stamp = frame * 33_000_000 + (0 if exact else rng.randint(-6_000_000, 6_000_000))
            events.append((stamp + rng.randint(0, 30_000_000), index, stamp))
    events.sort()
    sync = ApproximateTimeSynchronizer(num_inputs, **kwargs)
    plain = MessageFiltersPolicy(num_inputs, **kwargs)
    emitted = 0
    for n, (_, index, stamp) in enumerate(events):
        got = sync.add(index, stamp, (index, n))
        assert got == plain.add(index, stamp, (index, n)), n
        emitted += len(got)
    assert emitted > 60
    assert sync.dropped == plain.dropped and sync.pending == plain.pending
