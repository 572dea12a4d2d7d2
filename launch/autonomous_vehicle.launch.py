"""depth_interp on a vehicle: one node per camera (front, left, right), each in its own namespace.

    ros2 launch ros2_depth_interp autonomous_vehicle.launch.py

Camera ``<cam>`` reads ``/<cam>/semi_dense_depth``, ``/<cam>/mask``, ``/<cam>/image_rect`` and
``/<cam>/camera_info`` and publishes ``/<cam>/dense_depth``, ``/<cam>/dense_confidence`` and
``/<cam>/points``. config/autonomous_vehicle.yaml holds the shared range limits and decimation and
the per-camera overrides (it keys on /<cam>/depth_interp). To run on a GPU-less computer, pass
``providers`` in your own params file; to add a camera, add its name to CAMERAS. Each node gets the
shipped large-SHM Fast DDS profile unless the environment already names one.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from ros2_depth_interp.ros.ros_env import shipped_profile_env

PACKAGE = 'ros2_depth_interp'
CAMERAS = ('front', 'left', 'right')


def camera_node(camera, params_file):
    return Node(
        package=PACKAGE,
        executable='depth_interp_node',
        name='depth_interp',
        namespace=camera,
        parameters=[params_file],
        remappings=[('image', 'image_rect')],
        # the large-SHM Fast DDS profile, under the variable this Fast DDS reads (unless one is set)
        additional_env=shipped_profile_env(override=False),
        output='screen',
        emulate_tty=True,
    )


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'autonomous_vehicle.yaml'])
    params_file = LaunchConfiguration('params_file')
    return LaunchDescription(
        [DeclareLaunchArgument('params_file', default_value=default_params,
                               description='Parameters YAML (default: config/autonomous_vehicle.yaml).')]
        + [camera_node(camera, params_file) for camera in CAMERAS])
