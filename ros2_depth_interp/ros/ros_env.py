"""DDS isolation for every test, demo and benchmark process.

DDS must stay on loopback: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (ROS 2 Kilted ignores
``ROS_LOCALHOST_ONLY``), a domain id of our own so parallel runs never cross-talk, logs in a
temporary folder, and the shipped Fast DDS profile with a 64 MB shared-memory segment so that
multi-megabyte images are not lost.

Fast DDS reads its XML profile from a variable whose name changed with its major version:
``FASTRTPS_DEFAULT_PROFILES_FILE`` for Fast DDS 2.x (ROS 2 Humble, Jazzy) and
``FASTDDS_DEFAULT_PROFILES_FILE`` for 3.x (Kilted and later, which warns that the old name is
deprecated). ``fastdds_major_version`` finds the installed one, and the profile is set under its
name only (under both where it cannot be told).
"""
import glob
import os
import random
import sys
import tempfile

from ..core.resources import share_file

# Domain ids 1..100 keep the well-known ports valid with the default port mapping.
_DOMAIN_RANGE = (1, 100)
# <tmp>/ros2_depth_interp_domains/<id>.lock: an exclusive lock on it marks the id as taken
LOCK_DIR = os.path.join(tempfile.gettempdir(), 'ros2_depth_interp_domains')
_claimed = {}   # (lock dir, id) -> the open, locked file; kept until this process exits


def claim_domain_id(seed=None, lock_dir=None, id_range=_DOMAIN_RANGE):
    """A domain id that no other process on this machine holds, kept for this process's lifetime.

    Ids are tried in a random order; an id is ours once a non-blocking exclusive ``flock`` on its
    lock file succeeds. The kernel drops the lock when the process ends, crashed or not, so nothing
    needs cleaning up; child processes that get the id through their environment are covered by
    the parent's lock. Where ``flock`` is missing (not Linux/macOS) or every id is taken, a random id
    is returned (a warning says so in the second case): parallel runs may then share a domain.
    """
    rng = random.Random(seed if seed is not None else (os.getpid() * 7919) ^ int.from_bytes(os.urandom(4), 'little'))
    low, high = id_range
    candidates = list(range(low, high + 1))
    rng.shuffle(candidates)
    try:
        import fcntl
    except ImportError:                       # no flock: best effort
        return candidates[0]
    lock_dir = lock_dir or LOCK_DIR
    os.makedirs(lock_dir, exist_ok=True)
    for domain_id in candidates:
        if (lock_dir, domain_id) in _claimed:
            continue
        handle = open(os.path.join(lock_dir, '%d.lock' % domain_id), 'a')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _claimed[(lock_dir, domain_id)] = handle
        return domain_id
    print('ros_env: every DDS domain id in %d..%d is held by another process here; using %d, which may '
          'cross-talk with it' % (low, high, candidates[0]), file=sys.stderr)
    return candidates[0]


PROFILE_VARIABLES = {2: 'FASTRTPS_DEFAULT_PROFILES_FILE', 3: 'FASTDDS_DEFAULT_PROFILES_FILE'}
SHIPPED_PROFILE = ('config', 'fastdds_large_shm.xml')
# ROS 2 distributions that ship Fast DDS 2.x; every later one ships 3.x
_FAST_DDS_2_DISTROS = ('foxy', 'galactic', 'humble', 'iron', 'jazzy')
# the library of each major version, as installed in <prefix>/lib
_FAST_DDS_LIBRARIES = ((3, 'libfastdds.so*'), (2, 'libfastrtps.so*'),
                       (3, 'libfastdds*.dylib'), (2, 'libfastrtps*.dylib'))


def _ros_prefixes(env):
    """Install prefixes of this ROS environment, in lookup order: AMENT_PREFIX_PATH, then the
    interpreter's prefix (a venv with the ROS wheels has the libraries in <venv>/lib)."""
    prefixes = [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    return prefixes + [sys.prefix]


def fastdds_major_version(env=None):
    """2 or 3: the major version of the Fast DDS library this ROS environment loads; None if unknown.

    The first prefix that holds a Fast DDS library decides; without one, ``ROS_DISTRO`` does.
    """
    env = os.environ if env is None else env
    for prefix in _ros_prefixes(env):
        for major, pattern in _FAST_DDS_LIBRARIES:
            if glob.glob(os.path.join(prefix, 'lib', pattern)):
                return major
    distro = env.get('ROS_DISTRO', '').strip().lower()
    if distro:
        return 2 if distro in _FAST_DDS_2_DISTROS else 3
    return None


def profile_variables(env=None):
    """The names under which this Fast DDS reads its XML profile (both when the version is unknown)."""
    major = fastdds_major_version(env)
    return [PROFILE_VARIABLES[major]] if major in PROFILE_VARIABLES else sorted(PROFILE_VARIABLES.values())


def shipped_profile_env(env=None, override=True):
    """{variable: path of the shipped large-SHM profile} for this Fast DDS.

    With ``override=False`` (the launch files) a profile the user already set under this Fast
    DDS's variable is kept: the result is then empty.
    """
    env = os.environ if env is None else env
    names = profile_variables(env)
    if not override and any(env.get(name) for name in names):
        return {}
    profile = share_file(*SHIPPED_PROFILE)
    return {name: profile for name in names}


def isolated_dds_env(domain_id=None, log_dir=None, large_shm=True, base=None):
    """Return a copy of ``base`` (default: os.environ) with the isolation variables set."""
    env = dict(os.environ if base is None else base)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.pop('ROS_LOCALHOST_ONLY', None)
    env['ROS_DOMAIN_ID'] = str(claim_domain_id() if domain_id is None else int(domain_id))
    env['ROS_LOG_DIR'] = log_dir or tempfile.mkdtemp(prefix='depth_interp_roslog_')
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    # only this Fast DDS's variable: Fast DDS 3 warns about the 2.x name, 2.x ignores the 3.x one
    profile = shipped_profile_env(env) if large_shm else {}
    for name in PROFILE_VARIABLES.values():
        env.pop(name, None)
    env.update(profile)
    return env


def isolate_this_process(domain_id=None, log_dir=None, large_shm=True):
    """Apply the isolation to os.environ; call before ``rclpy.init()``. Returns the domain id."""
    env = isolated_dds_env(domain_id, log_dir, large_shm)
    for key in ('ROS_LOCALHOST_ONLY',) + tuple(PROFILE_VARIABLES.values()):
        if key not in env:
            os.environ.pop(key, None)
    os.environ.update(env)
    return int(env['ROS_DOMAIN_ID'])
