"""depth_interp beside LSD-SLAM: its keyframes in; dense depth, world-scale cloud, pose, /tf and a
dense map out (docs/lsd_slam.md).

    ros2 launch ros2_depth_interp lsd_slam.launch.py            # LSD-SLAM's topic names
    ros2 launch ros2_depth_interp lsd_slam.launch.py rviz:=true

LSD-SLAM (ROS 1, through ros1_bridge and lsd_slam_msgs' mapping rules, or a ROS 2 port) publishes
lsd_slam_msgs/Keyframe on /lsd_slam/keyframes and /lsd_slam/liveframes and KeyframeGraph on
/lsd_slam/graph. config/lsd_slam.yaml subscribes to those; the outputs go to /lsd_slam/dense_depth,
/lsd_slam/dense_confidence, /lsd_slam/points, /lsd_slam/keyframe_pose, /lsd_slam/points_map and
/tf (world -> lsd_slam_camera). Every other parameter keeps the node's default.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from ros2_depth_interp.ros.ros_env import shipped_profile_env

PACKAGE = 'ros2_depth_interp'


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    params_file = PathJoinSubstitution([share, 'config', 'lsd_slam.yaml'])
    rviz_config = PathJoinSubstitution([share, 'config', 'lsd_slam.rviz'])
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=params_file,
                              description='Parameters YAML (default: config/lsd_slam.yaml).'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Also start RViz2 with config/lsd_slam.rviz (map, cloud, TF in world).'),
        Node(
            package=PACKAGE,
            executable='depth_interp_node',
            name='depth_interp',
            parameters=[LaunchConfiguration('params_file')],
            additional_env=shipped_profile_env(override=False),
            output='screen',
            emulate_tty=True,
        ),
        Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            arguments=['-d', rviz_config],
            condition=IfCondition(LaunchConfiguration('rviz')),
            additional_env=shipped_profile_env(override=False),   # the map and clouds are large
            output='screen',
        ),
    ])
