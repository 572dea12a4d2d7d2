"""depth_interp beside LSD-SLAM on a robot with one camera, outputs reliable for RViz2.

    ros2 launch ros2_depth_interp robot.launch.py rviz:=true

LSD-SLAM's keyframes (lsd_slam_msgs/Keyframe on /lsd_slam/keyframes, its pose graph on
/lsd_slam/graph; from ROS 1 through ros1_bridge, see docs/lsd_slam.md) come in on keyframe_topic and
graph_topic: world-scale dense depth, cloud, pose, /tf and the dense map go out under /lsd_slam/
(launch/lsd_slam.launch.py runs that path alone). A SLAM that publishes its semi-dense inverse depth
as a 32FC1 image instead (0 where it has no estimate) feeds depth_topic and image_topic;
config/robot.yaml tells the node that image holds inverse depth and that no mask is needed. Both nodes get the shipped large-SHM Fast DDS profile unless the environment
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
        DeclareLaunchArgument('keyframe_topic', default_value='/lsd_slam/keyframes',
                              description="LSD-SLAM keyframes (lsd_slam_msgs/Keyframe); '' = off."),
        DeclareLaunchArgument('graph_topic', default_value='/lsd_slam/graph',
                              description="LSD-SLAM pose graph (lsd_slam_msgs/KeyframeGraph); '' = off."),
        DeclareLaunchArgument('depth_topic', default_value='semi_dense_depth',
                              description='Semi-dense inverse depth image (32FC1, 0 = unknown) from a SLAM '
                                          'that publishes one (LSD-SLAM publishes keyframes instead).'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='The image the SLAM tracks on.'),
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
            parameters=[LaunchConfiguration('params_file'), {
                'reliable_outputs': True,
                'keyframe_topic': LaunchConfiguration('keyframe_topic'),
                'graph_topic': LaunchConfiguration('graph_topic'),
            }],
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
