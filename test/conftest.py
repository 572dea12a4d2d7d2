"""Every test process gets its own DDS domain on loopback and a temporary ROS log folder.

This runs before any test module imports rclpy.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ros2_depth_interp.ros_env import isolate_this_process  # noqa: E402

isolate_this_process()
