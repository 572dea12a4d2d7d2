#!/usr/bin/env bash
# Build the ROS 2 interface packages this project needs into a Python venv, from PyPI wheels only.
#
#   scripts/ros_interfaces.sh [step] VENV [DISTRO]
#
#   step    all (default) | colcon | interfaces
#           colcon:     install colcon and its build extensions into VENV (nothing else)
#           interfaces: ament + rosidl wheels, the CMake-export patch, and the colcon build of
#                       lsd_slam_msgs (this repository) and tf2_msgs (../shared/ros2_src/geometry2,
#                       skipped with one line when absent), installed into VENV's prefix
#   VENV    the venv folder (.venv, .venv-jazzy, ...)
#   DISTRO  '' for the un-prefixed wheels (ros-<name>, ROS 2 Kilted), or e.g. 'jazzy' for
#           ros-jazzy-<name>. Default: ROS_WHEEL_DISTRO, else ''.
#
# The packages are installed into the venv prefix itself (colcon --merge-install with the venv as
# install base): the generated Python modules land in its site-packages and the libraries in its
# lib/, which the ROS wheels already put on the library path, so `VENV/bin/python -c "from
# lsd_slam_msgs.msg import Keyframe"` works with no setup file to source. Build folders go to
# build/ros_interfaces/<venv name>/ (ignored by git). Needs cmake and a C/C++ compiler.
set -euo pipefail

STEP=all
case "${1:-}" in
    all|colcon|interfaces) STEP=$1; shift ;;
esac
VENV=${1:?usage: scripts/ros_interfaces.sh [all|colcon|interfaces] VENV [DISTRO]}
DISTRO=${2:-${ROS_WHEEL_DISTRO:-}}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=$(cd "$VENV" && pwd)
VPY="$VENV/bin/python"
SHARED_TF2_MSGS="$REPO/../shared/ros2_src/geometry2/tf2_msgs"
BUILD_ROOT="$REPO/build/ros_interfaces/$(basename "$VENV")"
WHEEL_PREFIX="ros-${DISTRO:+$DISTRO-}"

say() { echo "ros_interfaces: $*"; }

pip_install() { "$VPY" -m pip install -q "$@"; }

# --- step 1: colcon (also used by `make ws`) --------------------------------------------------------
install_colcon() {
    pip_install colcon-core colcon-cmake colcon-ros colcon-python-setup-py colcon-library-path \
        colcon-package-information colcon-package-selection
}

# --- step 2: ament + rosidl from wheels ---------------------------------------------------------------
install_ament_rosidl() {
    local parts=(core include-directories target-dependencies export-definitions export-dependencies
                 export-include-directories export-interfaces export-libraries export-link-flags
                 export-targets libraries python version gen-version-h ros test)
    [ -z "$DISTRO" ] && parts+=(ros-core)     # ament_cmake_ros_core: Kilted on; Jazzy has none
    # Jazzy's ament_cmake_ros requires the gmock/gtest/pytest helpers, and its rosidl_generator_py
    # python_cmake_module, at configure time; their wheels do not pull them in
    [ "$DISTRO" = jazzy ] && parts+=(gmock gtest pytest)
    local wheels=("${WHEEL_PREFIX}ament-package" "${WHEEL_PREFIX}ament-cmake")
    for part in "${parts[@]}"; do wheels+=("${WHEEL_PREFIX}ament-cmake-$part"); done
    wheels+=("${WHEEL_PREFIX}rosidl-default-generators" "${WHEEL_PREFIX}rosidl-default-runtime"
             "${WHEEL_PREFIX}rosidl-core-generators")
    [ "$DISTRO" = jazzy ] && wheels+=("${WHEEL_PREFIX}python-cmake-module")
    wheels+=("${WHEEL_PREFIX}geometry-msgs")   # the node's keyframe poses; tf2_msgs builds on it
    pip_install "${wheels[@]}"
}

# The wheels' exported CMake targets name the include folders of the machine that built them
# (/opt/python/cpXY-cpXY/include/pythonX.Y and its numpy); point them at this venv's Python and
# numpy, otherwise a package that depends on another message package fails at configure.
patch_cmake_exports() {
    "$VPY" - "$VENV" <<'PY'
import glob, os, re, sys, sysconfig
import numpy
venv = sys.argv[1]
python_include = sysconfig.get_paths()['include']
numpy_include = numpy.get_include()
numpy_pattern = re.compile(r'/opt/python/cp\d+-cp\d+/lib/python\d+\.\d+/site-packages/numpy/(_core|core)/include')
python_pattern = re.compile(r'/opt/python/cp\d+-cp\d+/include/python\d+\.\d+')
patched = 0
for path in glob.glob(os.path.join(venv, 'share', '*', 'cmake', '*Export*.cmake')):
    with open(path) as handle:
        text = handle.read()
    new = python_pattern.sub(python_include, numpy_pattern.sub(numpy_include, text))
    if new != text:
        with open(path, 'w') as handle:
            handle.write(new)
        patched += 1
print('ros_interfaces: CMake exports pointed at this venv\'s Python and numpy includes (%d files)' % patched)
PY
}

build_interfaces() {
    local tool
    for tool in cmake cc c++; do
        if ! command -v "$tool" >/dev/null; then
            say "cannot build the interface packages: $tool is missing (Debian/Ubuntu: apt-get install cmake g++)"
            exit 1
        fi
    done
    local paths=("$REPO/lsd_slam_msgs")
    if [ -d "$SHARED_TF2_MSGS" ]; then
        paths+=("$SHARED_TF2_MSGS")
    else
        say "tf2_msgs skipped: $SHARED_TF2_MSGS not found (the node then publishes no /tf, the pose still goes out)"
    fi
    mkdir -p "$BUILD_ROOT"
    (
        cd "$BUILD_ROOT"
        export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
        export LD_LIBRARY_PATH="$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        "$VENV/bin/colcon" --log-base "$BUILD_ROOT/log" build --merge-install \
            --base-paths "${paths[@]}" --build-base "$BUILD_ROOT/build" --install-base "$VENV" --event-handlers console_direct- \
            --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VPY" -DPYTHON_EXECUTABLE="$VPY"
    )
    "$VPY" -c "from lsd_slam_msgs.msg import Keyframe, KeyframeGraph"
    say "lsd_slam_msgs built into $VENV"
}

case "$STEP" in
    colcon) install_colcon ;;
    interfaces) install_ament_rosidl; patch_cmake_exports; build_interfaces ;;
    all) install_colcon; install_ament_rosidl; patch_cmake_exports; build_interfaces ;;
esac
