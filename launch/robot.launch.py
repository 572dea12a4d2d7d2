"""depth_interp beside LSD-SLAM on a robot with one camera, outputs reliable for RViz2.

    ros2 launch ros2_depth_interp robot.launch.py rviz:=true

LSD-SLAM estimates inverse depth at keyframes; a bridge (for example ``depth_interp bag`` for
recordings, or a small republisher in the SLAM process) publishes it as a 32FC1 image that is 0
wherever the SLAM has no estimate. config/robot.yaml tells the node it is inverse depth and that
no separate mask is needed. Topic names default to a typical LSD-SLAM setup and can be changed with
the launch arguments. Both nodes get the shipped large-SHM Fast DDS profile unless the environment
already names one.
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
    params_file = PathJoinSubstitution([share, 'config', 'robot.yaml'])
    rviz_config = PathJoinSubstitution([share, 'config', 'depth_interp.rviz'])
    profile_env = shipped_profile_env(override=False)
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its outputs.'),
        DeclareLaunchArgument('params_file', default_value=params_file,
                              description='Parameters YAML (default: config/robot.yaml).'),
        DeclareLaunchArgument('depth_topic', default_value='/lsd_slam/inverse_depth',
                              description='LSD-SLAM semi-dense inverse depth (32FC1, 0 = unknown).'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='The image LSD-SLAM tracks on.'),
        DeclareLaunchArgument('camera_info_topic', default_value='/camera/camera_info',
                              description='Calibration of that camera.'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Also start RViz2 with config/depth_interp.rviz.'),
        Node(
            package=PACKAGE,
            executable='depth_interp_node',
            name='depth_interp',
            namespace=LaunchConfiguration('namespace'),
            # reliable_outputs is forced on whatever the params file says: RViz2 shows nothing
            # from a best-effort publisher.
            parameters=[LaunchConfiguration('params_file'), {'reliable_outputs': True}],
            # the large-SHM Fast DDS profile, under the variable this Fast DDS reads (unless one is set)
            additional_env=profile_env,
            remappings=[
                ('semi_dense_depth', LaunchConfiguration('depth_topic')),
                ('image', LaunchConfiguration('image_topic')),
                ('camera_info', LaunchConfiguration('camera_info_topic')),
            ],
            output='screen',
            emulate_tty=True,
        ),
        Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            arguments=['-d', rviz_config],
            condition=IfCondition(LaunchConfiguration('rviz')),
            additional_env=profile_env,
            output='screen',
        ),
    ])
