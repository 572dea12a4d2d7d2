"""DDS isolation: domain ids are claimed exclusively per process, and the environment stays on loopback."""
import os
import subprocess
import sys

from ros2_depth_interp.ros.ros_env import claim_domain_id, isolated_dds_env

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
    assert os.path.isfile(env['FASTDDS_DEFAULT_PROFILES_FILE'])
    assert int(isolated_dds_env(base={})['ROS_DOMAIN_ID']) != int(env['ROS_DOMAIN_ID'])
