"""An rclpy node in a context of its own, for the tools that share a process with others.

``replay`` and ``recorder`` run beside the node under test in benchmarks, demos and tests, so each
initializes its own ``rclpy.Context`` instead of the global one, and shuts only that down.
"""
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


class PrivateNode:
    """``self.context``, ``self.node`` and ``self.qos`` (keep last 5, reliable or best effort)."""

    def __init__(self, name, namespace='', reliable=False):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, namespace=namespace or None, context=self.context)
        self.qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                              reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)

    def close(self):
        try:
            self.node.destroy_node()
        finally:
            rclpy.try_shutdown(context=self.context)
