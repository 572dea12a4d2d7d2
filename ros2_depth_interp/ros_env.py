"""DDS isolation for every test, demo and benchmark process.

DDS must stay on loopback: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (ROS 2 Kilted ignores
``ROS_LOCALHOST_ONLY``), a domain id of our own so parallel runs never cross-talk, logs in a
temporary folder, and the shipped Fast DDS profile with a 64 MB shared-memory segment so that
multi-megabyte images are not lost.
"""
import os
import random
import tempfile

from .resources import share_file

# Domain ids 1..100 keep the well-known ports valid with the default port mapping.
_DOMAIN_RANGE = (1, 100)


def pick_domain_id(seed=None):
    """A domain id for this process, different across concurrent processes with high probability."""
    rng = random.Random(seed if seed is not None else (os.getpid() * 7919) ^ int.from_bytes(os.urandom(4), 'little'))
    return rng.randint(*_DOMAIN_RANGE)


def isolated_dds_env(domain_id=None, log_dir=None, large_shm=True, base=None):
    """Return a copy of ``base`` (default: os.environ) with the isolation variables set."""
    env = dict(os.environ if base is None else base)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.pop('ROS_LOCALHOST_ONLY', None)
    env['ROS_DOMAIN_ID'] = str(pick_domain_id() if domain_id is None else int(domain_id))
    env['ROS_LOG_DIR'] = log_dir or tempfile.mkdtemp(prefix='depth_interp_roslog_')
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if large_shm:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = share_file('config', 'fastdds_large_shm.xml')
    else:
        env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    return env


def isolate_this_process(domain_id=None, log_dir=None, large_shm=True):
    """Apply the isolation to os.environ; call before ``rclpy.init()``. Returns the domain id."""
    env = isolated_dds_env(domain_id, log_dir, large_shm)
    for key in ('ROS_LOCALHOST_ONLY', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        if key not in env:
            os.environ.pop(key, None)
    os.environ.update(env)
    return int(env['ROS_DOMAIN_ID'])
