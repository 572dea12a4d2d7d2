"""Every test process gets its own DDS domain on loopback and a temporary ROS log folder.

This runs before any test module imports rclpy.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.ros.ros_env import isolate_this_process  # noqa: E402

isolate_this_process()

import pytest  # noqa: E402


@pytest.fixture(scope='session')
def tiny_model_path(tmp_path_factory):
    """A small untrained model exported with the project's own export code (never the shipped one)."""
    from ros2_depth_interp.learning.export import export_tiny_model
    return export_tiny_model(str(tmp_path_factory.mktemp('model') / 'tiny.onnx'))
