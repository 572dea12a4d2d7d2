"""Where the package's share files are: config, models and launch files.

Installed by colcon, they live in ``share/ros2_depth_interp`` (found through ament_index); in a
checkout or an editable pip install they are the folders at the repository root.
"""
import os

PACKAGE = 'ros2_depth_interp'
DEFAULT_MODEL = 'depth_interp.onnx'


# ros2_depth_interp/core/resources.py -> the repository root (a checkout) or site-packages (installed)
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def package_share():
    """The folder that holds config/, models/ and launch/."""
    checkout = CHECKOUT
    if os.path.isdir(os.path.join(checkout, 'config')) and os.path.isdir(os.path.join(checkout, 'models')):
        return checkout
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory(PACKAGE)
    except Exception:  # not installed through colcon either
        return checkout


def share_file(*parts):
    return os.path.join(package_share(), *parts)


def default_model_path():
    """The shipped, trained model (overridable with DEPTH_INTERP_MODEL)."""
    return os.environ.get('DEPTH_INTERP_MODEL') or share_file('models', DEFAULT_MODEL)


def shared_data_dir():
    """The real data folder (never in the repo): $DEPTH_INTERP_DATA or ../shared/data beside the checkout."""
    env = os.environ.get('DEPTH_INTERP_DATA')
    if env:
        return env
    return os.path.join(os.path.dirname(CHECKOUT), 'shared', 'data')
