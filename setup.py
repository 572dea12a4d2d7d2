"""ament_python package definition (colcon build) that also installs with plain pip."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'ros2_depth_interp'

setup(
    name=PACKAGE,
    version='0.7.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*')),
        ('share/' + PACKAGE + '/models', glob('models/*')),
    ],
    install_requires=['setuptools', 'numpy', 'opencv-python-headless', 'onnxruntime', 'pyyaml'],
    extras_require={
        'gpu': ['onnxruntime-gpu'],
        'train': ['torch', 'onnx', 'tqdm', 'matplotlib'],
        'bag': ['rosbags'],
    },
    zip_safe=True,
    maintainer='ros2_depth_interp developers',
    maintainer_email='depth-interp@example.org',
    description='Dense depth and point clouds from semi-dense monocular SLAM depth with a compact CNN (ONNX Runtime).',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'depth_interp_node = ros2_depth_interp.ros.node:main',
            'depth_interp = ros2_depth_interp.tools.cli:main',
        ],
    },
)
