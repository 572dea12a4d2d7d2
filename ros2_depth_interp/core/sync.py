"""Pairing the depth, intensity and mask streams, and handing the newest set to the worker.

``ApproximateTimeSynchronizer`` reimplements the ApproximateTime policy of ROS' C++
message_filters, for environments without message_filters (a venv of PyPI's ROS wheels) and for
tools that pair messages outside ROS (bag processing, replay). The node uses message_filters' own
Python synchronizer where it can be imported (``ros.input_sync``); that one uses a different,
simpler heuristic. The policy, in short:

* every input has a FIFO of received messages (bounded by ``queue_size``, oldest dropped first);
* once every input has a message, the set made of the queue heads is a *candidate*; the input
  whose head is newest becomes the *pivot*. The search then moves the oldest head aside and looks
  for a set with a smaller time span, until it can prove no later message can give a better set
  (or the oldest head is the pivot itself); then the best set is emitted;
* each message is used in at most one set; messages older than an emitted set on their input are
  discarded, and a set spanning more than ``slop`` is never formed (its oldest head is dropped).

Exact-stamp shortcut (our addition): when no search is in progress and every queue head carries
exactly the same stamp, that set has span 0, and no set can do better, so it is emitted at once.
This is the common case for SLAM outputs (depth, image and mask published with the keyframe's
stamp) and for the replay tool. The message_filters search reaches the same set at the same
moment in almost every case, but it first walks the candidate search, and when the input that
would be the pivot has overflowed its queue it drops the set ('no_match_after_overflow') for fear
that a better match was lost; with span 0 nothing better can exist, so the shortcut keeps it.
Every other case (stamps that differ by any amount) follows the message_filters policy unchanged.

Optional per-input lower bounds on the inter-message period let it emit a set as soon as it is
provably optimal instead of waiting for the next message (see ``inter_message_lower_bounds``):
with jittered stamps and no bounds, a set can only be proved best once a later message arrives on
another input, which costs up to one frame period of latency.

Every message passed to ``add`` ends up in exactly one of three places: an emitted set, the
``dropped`` counter (by reason, see ``DROP_REASONS``) or still ``pending``; the node exports these
counters in its diagnostics.

``LatestSetMailbox`` sits between the DDS callbacks and the worker thread: inference is slower
than the sensors, so only the newest set is worth processing, and anything older is dropped and
counted instead of queueing up latency.
"""
import collections
import math
import threading
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ['ApproximateTimeSynchronizer', 'LatestSetMailbox', 'DROP_REASONS', 'check_sync_arguments']

DROP_REASONS = {
    'queue_overflow': 'more than queue_size messages waiting on one input; the oldest was dropped',
    'no_match_within_slop': 'no message on another input within slop of this one',
    'stale': 'older than the set chosen for its input (a better-matching set was found)',
    'no_match_after_overflow': 'dropped while an input that overflowed recovers its pivot role',
    'out_of_order': 'stamp not newer than the previous message on the same input',
    'reset': 'still waiting when reset() was called',
}


def check_sync_arguments(num_inputs, queue_size, slop):
    """``ValueError`` unless there is at least one input, a queue of at least one message per input,
    and a slop of at least 0 seconds (inf: unbounded). Shared by every synchronizer."""
    if int(num_inputs) < 1:
        raise ValueError(f'num_inputs must be >= 1, got {num_inputs!r}')
    if int(queue_size) < 1:
        raise ValueError(f'queue_size must be >= 1, got {queue_size!r}')
    slop = float(slop)
    if math.isnan(slop) or slop < 0:
        raise ValueError(f'slop must be >= 0 seconds (inf = unbounded), got {slop!r}')


class ApproximateTimeSynchronizer:
    """message_filters ApproximateTime policy on integer-nanosecond stamps.

    ``add(index, stamp_ns, item)`` returns the list of sets completed by this message (usually
    empty or one), each a tuple of items in input order. Thread-safe.
    """

    # Emit span-0 sets without the candidate search (see the module docstring). A class attribute
    # so that tests can compare against the plain message_filters policy.
    exact_stamp_shortcut = True
    name = 'own'                  # the node's diagnostics report which synchronizer pairs its inputs
    drop_reasons = DROP_REASONS

    def __init__(self, num_inputs: int, queue_size: int = 10, slop: float = 0.05,
                 age_penalty: float = 0.0,
                 inter_message_lower_bounds: Optional[Sequence[float]] = None):
        check_sync_arguments(num_inputs, queue_size, slop)
        slop = float(slop)
        if not (age_penalty >= 0 and math.isfinite(age_penalty)):
            raise ValueError(f'age_penalty must be finite and >= 0, got {age_penalty!r}')
        self.num_inputs = int(num_inputs)
        self.queue_size = int(queue_size)
        self.slop = slop
        self._slop_ns = None if math.isinf(slop) else int(round(slop * 1e9))
        self._age_factor = 1.0 + float(age_penalty)
        bounds = inter_message_lower_bounds or [0.0] * self.num_inputs
        if len(bounds) != self.num_inputs or any(not (b >= 0 and math.isfinite(b)) for b in bounds):
            raise ValueError('inter_message_lower_bounds needs one finite value >= 0 seconds per '
                             f'input, got {inter_message_lower_bounds!r}')
        self._lower_bound_ns = [int(round(b * 1e9)) for b in bounds]
        self.dropped = collections.Counter()
        self.emitted = 0
        self._lock = threading.Lock()
        self._clear()

    # ------------------------------------------------------------------ public
    def add(self, index: int, stamp_ns: int, item: Any) -> List[Tuple]:
        """Offer one message; returns the sets it completed (each a tuple in input order)."""
        if not 0 <= index < self.num_inputs:
            raise IndexError(f'input index {index} out of range for {self.num_inputs} inputs')
        stamp = int(stamp_ns)
        with self._lock:
            last = self._last_stamp[index]
            if last is not None and stamp <= last:
                self.dropped['out_of_order'] += 1
                return []
            self._last_stamp[index] = stamp
            self._output = []
            queue = self._queues[index]
            queue.append((stamp, item))
            if len(queue) == 1:
                self._num_non_empty += 1
                if self._num_non_empty == self.num_inputs:
                    self._process()
            # process() may have left queue_size + 1 messages on this input
            if len(queue) + len(self._past[index]) > self.queue_size:
                self._num_non_empty = 0   # recomputed by _recover
                for i in range(self.num_inputs):
                    self._recover(i)
                queue.popleft()
                self.dropped['queue_overflow'] += 1
                self._has_dropped[index] = True
                if self._pivot is not None:
                    # the candidate may have contained the dropped message: search again
                    self._candidate = None
                    self._pivot = None
                    self._process()
            output, self._output = self._output, []
            self.emitted += len(output)
            return output

    @property
    def pending(self) -> int:
        """Messages held, waiting for a match."""
        with self._lock:
            return sum(len(q) + len(p) for q, p in zip(self._queues, self._past))

    def reset(self):
        """Forget every queued message (counted as 'reset') and the per-input stamp history.

        For time jumps, e.g. a bag played in a loop. Drop counters are kept.
        """
        with self._lock:
            held = sum(len(q) + len(p) for q, p in zip(self._queues, self._past))
            if held:
                self.dropped['reset'] += held
            self._clear()

    # ------------------------------------------------------------------ internals
    def _clear(self):
        n = self.num_inputs
        self._queues = [collections.deque() for _ in range(n)]   # (stamp, item), oldest first
        self._past = [[] for _ in range(n)]       # heads moved aside during a candidate search
        self._has_dropped = [False] * n
        self._last_stamp = [None] * n
        self._num_non_empty = 0
        self._candidate = None                    # tuple of (stamp, item) per input
        self._pivot = None
        self._pivot_time = 0
        self._candidate_start = 0
        self._candidate_end = 0
        self._output = []

    def _recover(self, i: int, count: Optional[int] = None):
        """Put ``count`` (default all) messages from past back at the head of queue i."""
        past, queue = self._past[i], self._queues[i]
        count = len(past) if count is None else count
        for _ in range(count):
            queue.appendleft(past.pop())
        if queue:
            self._num_non_empty += 1

    def _delete_front(self, i: int, reason: str):
        queue = self._queues[i]
        queue.popleft()
        self.dropped[reason] += 1
        if not queue:
            self._num_non_empty -= 1

    def _move_front_to_past(self, i: int):
        queue = self._queues[i]
        self._past[i].append(queue.popleft())
        if not queue:
            self._num_non_empty -= 1

    def _make_candidate(self):
        self._candidate = tuple(queue[0] for queue in self._queues)
        # messages moved aside are older than the new candidate on their input: never used
        for past in self._past:
            if past:
                self.dropped['stale'] += len(past)
                past.clear()

    def _publish_exact_heads(self):
        """Emit the queue heads, which all carry the same stamp (span 0, optimal by definition).

        Only called with no search in progress, so nothing was moved aside (``_past`` is empty).
        The overflow flags are cleared: every message an input dropped was older than the one just
        used, so it could not have formed a later set anyway.
        """
        self._candidate = tuple(queue[0] for queue in self._queues)
        self._has_dropped = [False] * self.num_inputs
        self._publish_candidate()

    def _publish_candidate(self):
        self._output.append(tuple(item for _, item in self._candidate))
        self._candidate = None
        self._pivot = None
        self._num_non_empty = 0
        for i in range(self.num_inputs):
            # after recovery the head of each queue is the candidate's message: consume it
            self._recover(i)
            queue = self._queues[i]
            queue.popleft()
            if not queue:
                self._num_non_empty -= 1

    @staticmethod
    def _boundary(times: Sequence[int], end: bool) -> Tuple[int, int]:
        """(index, time) of the oldest (end=False, first on ties) or newest (end=True, last on
        ties) time, the same tie-breaking as message_filters."""
        index, time = 0, times[0]
        for i in range(1, len(times)):
            if (times[i] < time) != end:
                index, time = i, times[i]
        return index, time

    def _head_times(self) -> List[int]:
        return [queue[0][0] for queue in self._queues]

    def _virtual_times(self) -> List[int]:
        """Head times, with the earliest possible future stamp standing in for empty queues."""
        times = []
        for i, queue in enumerate(self._queues):
            if queue:
                times.append(queue[0][0])
            else:
                earliest_next = self._past[i][-1][0] + self._lower_bound_ns[i]
                times.append(max(earliest_next, self._pivot_time))
        return times

    def _cannot_beat(self, end_time: int, limit: int) -> bool:
        return (end_time - self._candidate_end) * self._age_factor >= limit - self._candidate_start

    def _process(self):
        n = self.num_inputs
        while self._num_non_empty == n:
            times = self._head_times()
            if self._pivot is None and self.exact_stamp_shortcut and min(times) == max(times):
                self._publish_exact_heads()
                continue
            end_index, end_time = self._boundary(times, end=True)
            start_index, start_time = self._boundary(times, end=False)
            for i in range(n):
                if i != end_index:
                    # no dropped message could have been better than the ones we have
                    self._has_dropped[i] = False
            if self._pivot is None:
                if self._slop_ns is not None and end_time - start_time > self._slop_ns:
                    self._delete_front(start_index, 'no_match_within_slop')
                    continue
                if self._has_dropped[end_index]:
                    # the would-be pivot lost messages: a better match may be gone
                    self._delete_front(start_index, 'no_match_after_overflow')
                    continue
                self._make_candidate()
                self._candidate_start, self._candidate_end = start_time, end_time
                self._pivot, self._pivot_time = end_index, end_time
                self._move_front_to_past(start_index)
            else:
                if self._cannot_beat(end_time, start_time):
                    self._move_front_to_past(start_index)
                else:
                    self._make_candidate()    # better candidate, same pivot
                    self._candidate_start, self._candidate_end = start_time, end_time
                    self._move_front_to_past(start_index)

            if start_index == self._pivot:
                # every candidate for this pivot has been looked at
                self._publish_candidate()
            elif self._cannot_beat(end_time, self._pivot_time):
                # any later candidate spans [pivot_time, end_time]: already no better
                self._publish_candidate()
            elif self._num_non_empty < n:
                self._try_prove_optimal()

    def _try_prove_optimal(self):
        """Search ahead with optimistic stamps for the empty queues; publish if nothing can win."""
        moves = [0] * self.num_inputs
        while True:
            times = self._virtual_times()
            end_index, end_time = self._boundary(times, end=True)
            start_index, start_time = self._boundary(times, end=False)
            if self._cannot_beat(end_time, self._pivot_time):
                self._publish_candidate()    # also undoes the virtual moves
                return
            if not self._cannot_beat(end_time, start_time):
                # an optimistic future set could beat the candidate: wait for more messages
                self._num_non_empty = 0
                for i in range(self.num_inputs):
                    self._recover(i, moves[i])
                return
            # start_time < pivot_time here, so queue start_index is not empty
            self._move_front_to_past(start_index)
            moves[start_index] += 1


class LatestSetMailbox:
    """A one-slot, thread-safe mailbox that keeps only the newest item.

    ``put`` never blocks: an item still waiting when a new one arrives is dropped and counted
    under 'superseded'; ``get`` waits for an item (or ``close``). After ``close``, a waiting item
    can still be taken, new puts are counted under 'closed'.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._item = None
        self._has_item = False
        self._closed = False
        self.dropped = collections.Counter()
        self.put_count = 0
        self.delivered = 0

    def put(self, item) -> bool:
        """Store ``item``; returns True if it superseded an unconsumed one."""
        with self._condition:
            self.put_count += 1
            if self._closed:
                self.dropped['closed'] += 1
                return False
            superseded = self._has_item
            if superseded:
                self.dropped['superseded'] += 1
            self._item, self._has_item = item, True
            self._condition.notify()
            return superseded

    def get(self, timeout: Optional[float] = None):
        """The newest item, or None on timeout or when closed and empty."""
        with self._condition:
            self._condition.wait_for(lambda: self._has_item or self._closed, timeout)
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            self.delivered += 1
            return item

    def close(self):
        """Wake every waiting getter; used at shutdown."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._condition:
            return int(self._has_item)
