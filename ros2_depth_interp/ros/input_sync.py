"""The node's input synchronizer: ROS' ``message_filters`` where it can be imported, ours otherwise.

Every ROS 2 install has ``message_filters``; a venv built from PyPI's ROS wheels does not (PyPI
lacks it), and there the project's own ``core.sync.ApproximateTimeSynchronizer`` pairs the inputs.
Both are used through one interface: ``add(index, stamp_ns, msg)`` returns the sets this message
completed, ``dropped`` counts lost messages by reason, ``pending`` and ``emitted`` count the rest,
``reset()`` forgets everything, ``name`` says which one it is (the node's diagnostics report it).

How they differ (message_filters' Python ``ApproximateTimeSynchronizer``, which is not the C++
policy that ``core.sync`` follows):

* message_filters emits a set the moment it finds one whose stamps all lie less than ``slop``
  apart (strictly less), pairing the new message with the closest stamp on each other input; ours
  waits until no later message can give a set with a smaller span (``sync_min_period`` shortens
  the wait), and accepts a span of exactly ``slop``.
* message_filters keeps unmatched messages until ``queue_size`` newer ones push them out (counted
  here as ``queue_overflow``), and accepts stamps out of order; ours drops a message as soon as it
  cannot pair (``no_match_within_slop``, ``stale``, ``out_of_order``).
* ``sync_min_period`` only applies to ours.
"""
import collections
import threading

from ..core.sync import ApproximateTimeSynchronizer, check_sync_arguments

try:
    import message_filters
except ImportError:          # a PyPI-only venv: no message_filters
    message_filters = None

__all__ = ['MessageFiltersSynchronizer', 'make_synchronizer', 'message_filters_available']

# message_filters needs a finite slop (an rclpy Duration): an unbounded one becomes this
_MAX_SLOP_S = 1e6


def message_filters_available():
    return message_filters is not None


class MessageFiltersSynchronizer:
    """``message_filters.ApproximateTimeSynchronizer`` fed through one ``SimpleFilter`` per input.

    ``msg`` must carry ``header.stamp`` (message_filters reads the stamp from it); ``stamp_ns`` is
    accepted for the common interface and must be that stamp. Thread-safe.
    """

    name = 'message_filters'
    drop_reasons = {
        'queue_overflow': 'more than queue_size messages waiting on one input; the oldest was dropped '
                          '(message_filters keeps unmatched messages until then)',
        'replaced': 'a later message with the same stamp on the same input replaced it',
        'reset': 'still waiting when reset() was called',
    }

    def __init__(self, num_inputs, queue_size=10, slop=0.05):
        if message_filters is None:
            raise ImportError('message_filters is not installed')
        check_sync_arguments(num_inputs, queue_size, slop)
        slop = float(slop)
        self.num_inputs = int(num_inputs)
        self.queue_size = int(queue_size)
        self.slop = slop
        self._inputs = [message_filters.SimpleFilter() for _ in range(self.num_inputs)]
        self._sync = message_filters.ApproximateTimeSynchronizer(
            self._inputs, self.queue_size, min(slop, _MAX_SLOP_S))
        self._sync.registerCallback(self._on_set)
        self._output = []
        self.dropped = collections.Counter()
        self.emitted = 0
        self._lock = threading.Lock()

    def _on_set(self, *msgs):
        self._output.append(tuple(msgs))

    def _held(self):
        return sum(len(queue) for queue in self._sync.queues)

    def add(self, index, stamp_ns, msg):
        """Offer one message; returns the sets it completed (each a tuple in input order)."""
        if not 0 <= index < self.num_inputs:
            raise IndexError(f'input index {index} out of range for {self.num_inputs} inputs')
        with self._lock:
            replaces = int(stamp_ns) in self._sync.queues[index]
            held_before = self._held()
            self._inputs[index].signalMessage(msg)
            output, self._output = self._output, []
            lost = held_before + 1 - self._held() - len(output) * self.num_inputs
            if lost > 0:
                self.dropped['replaced' if replaces else 'queue_overflow'] += lost
            self.emitted += len(output)
            return output

    @property
    def pending(self):
        """Messages held, waiting for a match."""
        with self._lock:
            return self._held()

    def reset(self):
        """Forget every queued message (counted as 'reset'). Drop counters are kept."""
        with self._lock:
            held = self._held()
            if held:
                self.dropped['reset'] += held
            for queue in self._sync.queues:
                queue.clear()


def make_synchronizer(num_inputs, queue_size, slop, min_period=0.0, use_message_filters=None):
    """message_filters' synchronizer when it can be imported (or ``use_message_filters`` says so),
    the project's own otherwise."""
    if use_message_filters is None:
        use_message_filters = message_filters_available()
    if use_message_filters:
        return MessageFiltersSynchronizer(num_inputs, queue_size=queue_size, slop=slop)
    return ApproximateTimeSynchronizer(num_inputs, queue_size=queue_size, slop=slop,
                                       inter_message_lower_bounds=[min_period] * num_inputs)
