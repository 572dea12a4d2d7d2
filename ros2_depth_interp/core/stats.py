"""Counters, rates and per-stage latency for the node's /diagnostics (ROS-free).

The node's callbacks, its worker thread and its diagnostics timer all touch these numbers, so every
class here takes a lock around its state. ``NodeStats.key_values()`` flattens everything into the
(key, value) string pairs that diagnostic_msgs/KeyValue carries, with stable key names that tests,
dashboards and the benchmark can rely on:

- ``rate_<name>_hz``: events per second over the last ``rate_window_s`` seconds
- ``latency_<stage>_ms_{mean,p50,p90,max}``: over the last ``latency_window`` samples
- ``count_<name>``: totals since start (frames in/out, ...)
- ``dropped_<reason>``: frames dropped since start, one key per reason
- ``input_density``: mean fraction of known input pixels over the latency window
"""
import threading
import time
from collections import Counter, deque

import numpy as np


class RateMeter:
    """Events per second over a sliding time window (clock injectable for tests)."""

    def __init__(self, window_s=5.0, clock=time.monotonic):
        self.window_s = float(window_s)
        self._clock = clock
        self._times = deque()
        self._lock = threading.Lock()

    def tick(self, now=None):
        now = self._clock() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def _trim(self, now):
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now=None):
        """Events/s: (n - 1) intervals over the span they cover, 0 with fewer than 2 events.

        With a steady stream this is the stream's rate; after the stream stops, the window empties
        and the rate falls to 0 instead of freezing at the last value.
        """
        now = self._clock() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0


class LatencyWindow:
    """The last ``size`` samples of one stage's duration (seconds) and their summary."""

    def __init__(self, size=200):
        self._samples = deque(maxlen=int(size))
        self._lock = threading.Lock()

    def add(self, seconds):
        with self._lock:
            self._samples.append(float(seconds))

    def summary(self):
        """dict(mean, p50, p90, max, n) in seconds; None when there is no sample yet."""
        with self._lock:
            if not self._samples:
                return None
            values = np.fromiter(self._samples, dtype=np.float64, count=len(self._samples))
        p50, p90 = np.percentile(values, [50, 90])
        return {'mean': float(values.mean()), 'p50': float(p50), 'p90': float(p90),
                'max': float(values.max()), 'n': int(values.size)}


class NodeStats:
    """All numbers the node reports, in one place.

    ``stages`` fixes the order of the latency keys; a stage that has no sample yet is reported
    as ``nan`` so the key set stays the same from the first diagnostics message on.
    """

    def __init__(self, stages=('queue', 'convert', 'normalize', 'infer', 'cloud', 'publish', 'total'),
                 rate_window_s=5.0, latency_window=200, clock=time.monotonic):
        self.stages = tuple(stages)
        self._clock = clock
        self._rates = {}
        self._rate_window_s = rate_window_s
        self._latency = {stage: LatencyWindow(latency_window) for stage in self.stages}
        self._density = deque(maxlen=int(latency_window))
        self._counts = Counter()
        self._dropped = Counter()
        self._external_dropped = {}
        self._lock = threading.Lock()

    # --- recording ------------------------------------------------------------------------------
    def tick(self, name, now=None):
        """One event of stream ``name`` (e.g. 'depth', 'input_set', 'output'); also counted."""
        with self._lock:
            meter = self._rates.get(name)
            if meter is None:
                meter = self._rates[name] = RateMeter(self._rate_window_s, self._clock)
            self._counts[name] += 1
        meter.tick(now)

    def count(self, name, n=1):
        with self._lock:
            self._counts[name] += n

    def drop(self, reason, n=1):
        """A frame (or message) dropped for ``reason``; the reason becomes ``dropped_<reason>``."""
        with self._lock:
            self._dropped[reason] += n

    def set_external_drops(self, prefix, counter):
        """Mirror a drop Counter owned elsewhere (the synchronizer, the mailbox) under ``prefix``.

        The owner keeps counting; we read a snapshot at report time, so nothing is counted twice.
        """
        with self._lock:
            self._external_dropped[prefix] = counter

    def add_timings(self, timings):
        """Per-stage durations (seconds) of one frame; unknown stage names are added on the fly."""
        for stage, seconds in timings.items():
            window = self._latency.get(stage)
            if window is None:
                with self._lock:
                    window = self._latency.setdefault(stage, LatencyWindow(self._density.maxlen))
                    if stage not in self.stages:
                        self.stages = self.stages + (stage,)
            window.add(seconds)

    def add_density(self, fraction):
        with self._lock:
            self._density.append(float(fraction))

    # --- reading --------------------------------------------------------------------------------
    def dropped(self):
        """All drops by reason: own counters plus snapshots of the external ones."""
        with self._lock:
            total = Counter(self._dropped)
            external = list(self._external_dropped.items())
        for prefix, counter in external:
            for reason, n in dict(counter).items():
                total[prefix + reason] += n
        return total

    def counts(self):
        with self._lock:
            return Counter(self._counts)

    def rate(self, name, now=None):
        with self._lock:
            meter = self._rates.get(name)
        return meter.rate(now) if meter else 0.0

    def latency(self, stage):
        window = self._latency.get(stage)
        return window.summary() if window else None

    def key_values(self, rate_names=(), extra=(), now=None):
        """[(key, value-string)] for DiagnosticStatus.values, in a stable order.

        ``rate_names`` are the streams whose rate is always reported (0 before the first event),
        ``extra`` are (key, value) pairs put first (provider, model path, ...).
        """
        pairs = [(str(k), str(v)) for k, v in extra]
        with self._lock:
            known_rates = list(self._rates)
        for name in list(rate_names) + [n for n in known_rates if n not in rate_names]:
            pairs.append(('rate_%s_hz' % name, '%.2f' % self.rate(name, now)))
        for stage in self.stages:
            summary = self.latency(stage)
            for stat in ('mean', 'p50', 'p90', 'max'):
                value = summary[stat] * 1e3 if summary else float('nan')
                pairs.append(('latency_%s_ms_%s' % (stage, stat), '%.3f' % value))
        with self._lock:
            density = list(self._density)
        pairs.append(('input_density', '%.4f' % (float(np.mean(density)) if density else float('nan'))))
        for name, n in sorted(self.counts().items()):
            pairs.append(('count_%s' % name, str(n)))
        dropped = self.dropped()
        for reason, n in sorted(dropped.items()):
            pairs.append(('dropped_%s' % reason, str(n)))
        pairs.append(('dropped_total', str(sum(dropped.values()))))
        return pairs
