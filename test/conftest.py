"""Every test process gets its own DDS domain on loopback and a temporary ROS log folder.

This runs before any test module imports rclpy. Where torch is not installed (the ROS 2 Jazzy
venv), a test module that cannot be imported for that reason alone is reported as skipped, and the
tiny test model comes from ``DEPTH_INTERP_TINY_MODEL`` (exported with torch elsewhere).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.ros.ros_env import isolate_this_process  # noqa: E402

isolate_this_process()

import pytest  # noqa: E402

from node_helpers import TORCH_MISSING, tiny_model  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module whose import fails only because torch is absent: skipped, with that reason."""
    outcome = yield
    report = outcome.get_result()
    if (TORCH_MISSING and report.failed and isinstance(collector, pytest.Module)
            and "No module named 'torch'" in str(report.longrepr)):
        report.outcome = 'skipped'
        report.longrepr = (str(collector.path), 0, 'Skipped: %s' % TORCH_MISSING)


@pytest.fixture(scope='session')
def tiny_model_path(tmp_path_factory):
    """A small untrained model exported with the project's own export code (never the shipped one)."""
    return tiny_model(tmp_path_factory.mktemp('model'))
