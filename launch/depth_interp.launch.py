"""One depth_interp node, with its input topics, namespace, parameters file and model as arguments.

    ros2 launch ros2_depth_interp depth_interp.launch.py \
        namespace:=camera params_file:=/path/to/my.yaml \
        depth_topic:=/slam/depth image_topic:=/camera/image_raw use_mask:=false

Every argument has a default, so ``ros2 launch ros2_depth_interp depth_interp.launch.py`` alone runs
the node with its built-in defaults and the shipped model, subscribed to the relative topics
semi_dense_depth, image, mask and camera_info. The node gets the shipped large-SHM Fast DDS profile
unless the environment already names one.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ros2_depth_interp.ros.ros_env import shipped_profile_env

PACKAGE = 'ros2_depth_interp'

ARGUMENTS = (
    ('namespace', '', 'Namespace of the node (and of its relative topics).'),
    ('node_name', 'depth_interp', 'Name of the node (params files key on it).'),
    ('params_file', '', "ROS 2 parameters YAML; '' = built-in defaults."),
    ('model_path', '', "Model file; '' = the params file's value or the shipped model."),
    ('depth_topic', 'semi_dense_depth', 'Semi-dense depth input (sensor_msgs/Image).'),
    ('image_topic', 'image', 'Intensity image input (sensor_msgs/Image).'),
    ('mask_topic', 'mask', 'Mask input (mono8, non-zero = known).'),
    ('camera_info_topic', 'camera_info', 'Camera intrinsics (sensor_msgs/CameraInfo).'),
    ('log_level', 'info', 'Logger level of the node.'),
)


def _node(context):
    """Build the node once the arguments are known: an empty params_file/model_path adds nothing."""
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    parameters = []
    if arg('params_file'):
        parameters.append(arg('params_file'))
    if arg('model_path'):
        parameters.append({'model_path': arg('model_path')})
    return [Node(
        package=PACKAGE,
        executable='depth_interp_node',
        name=arg('node_name'),
        namespace=arg('namespace'),
        parameters=parameters,
        remappings=[
            ('semi_dense_depth', arg('depth_topic')),
            ('image', arg('image_topic')),
            ('mask', arg('mask_topic')),
            ('camera_info', arg('camera_info_topic')),
        ],
        arguments=['--ros-args', '--log-level', arg('log_level')],
        # the large-SHM Fast DDS profile, under the variable this Fast DDS reads (unless one is set)
        additional_env=shipped_profile_env(override=False),
        output='screen',
        emulate_tty=True,
    )]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS]
        + [OpaqueFunction(function=_node)])
