#!/usr/bin/env bash
# Build a colcon workspace with this package and the ROS 2 tools PyPI lacks, against a venv's ROS wheels.
#
#   scripts/ros/colcon_ws.sh VENV WS        (make ws: VENV=.venv WS=build/ws)
#
# WS/src gets this repository (a symlink) and copies of ../shared/ros2_src's launch, launch_xml,
# launch_yaml, launch_ros, ros2launch, ros2cli, ros2pkg and composition_interfaces, plus
# message_filters' Python module wrapped as an ament_python package (its own package.xml is a C++
# build). colcon builds them with --symlink-install, so edits to this package's Python files need no
# rebuild; then
#
#   . WS/install/setup.sh && ros2 launch ros2_depth_interp robot.launch.py
#
# VENV must already hold colcon, the ament/rosidl wheels and their CMake-export fix, which `make venv`
# installs (scripts/ros_interfaces.sh). Without ../shared/ros2_src this says so and exits with 3.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=$(cd "${1:?usage: scripts/ros/colcon_ws.sh VENV WS}" && pwd)
WS=${2:?usage: scripts/ros/colcon_ws.sh VENV WS}
SHARED="$(dirname "$REPO")/shared/ros2_src"
# folder under ../shared/ros2_src -> the packages in it that the workspace builds
SHARED_PACKAGES=(launch/launch launch/launch_xml launch/launch_yaml launch_ros/launch_ros
                 launch_ros/ros2launch ros2cli/ros2cli ros2cli/ros2pkg
                 rcl_interfaces/composition_interfaces)

say() { echo "colcon_ws: $*"; }

if [ ! -d "$SHARED" ]; then
    say "cannot build the workspace: $SHARED is missing (it holds launch, launch_ros, ros2cli," \
        "message_filters and composition_interfaces, which PyPI does not have)"
    exit 3
fi
if [ ! -x "$VENV/bin/colcon" ]; then
    say "cannot build the workspace: $VENV/bin/colcon is missing (make venv installs it)"
    exit 3
fi

# what launch and ros2cli import beyond the ROS wheels (PyPI has these two)
"$VENV/bin/python" -m pip install -q osrf-pycommon lark

mkdir -p "$WS"
WS=$(cd "$WS" && pwd)
SRC="$WS/src"
# always from scratch: colcon's symlink install refuses to replace the links of a previous build
rm -rf "$SRC" "$WS/build" "$WS/install" "$WS/log" "$WS/colcon_build.log"
mkdir -p "$SRC"
ln -s "$REPO" "$SRC/ros2_depth_interp"
# copies, not links: ../shared may be read-only, and setup.py writes its egg-info beside the sources
for package in "${SHARED_PACKAGES[@]}"; do
    cp -r "$SHARED/$package" "$SRC/"
    chmod -R u+w "$SRC/$(basename "$package")"
done

# message_filters: the Python module, installed as an ament_python package named message_filters
MF="$SRC/message_filters"
mkdir -p "$MF/resource"
cp -r "$SHARED/message_filters/src/message_filters" "$MF/"
chmod -R u+w "$MF"
touch "$MF/resource/message_filters"
version=$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' "$SHARED/message_filters/package.xml" | head -1)
cat > "$MF/package.xml" <<EOF
<?xml version="1.0"?>
<package format="3">
  <name>message_filters</name>
  <version>$version</version>
  <description>The Python module of ros2/message_filters (its C++ library is not built here).</description>
  <maintainer email="depth-interp@example.org">ros2_depth_interp developers</maintainer>
  <license>Apache-2.0</license>
  <exec_depend>rclpy</exec_depend>
  <export><build_type>ament_python</build_type></export>
</package>
EOF
cat > "$MF/setup.py" <<EOF
from setuptools import setup
setup(name='message_filters', version='$version', packages=['message_filters'],
      data_files=[('share/ament_index/resource_index/packages', ['resource/message_filters']),
                  ('share/message_filters', ['package.xml'])])
EOF

started=$(date +%s)
say "building in $WS (output in $WS/colcon_build.log)"
if ! (
    cd "$WS"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    export LD_LIBRARY_PATH="$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    "$VENV/bin/colcon" --log-base "$WS/log" build --symlink-install --base-paths "$SRC" \
        --build-base "$WS/build" --install-base "$WS/install" \
        --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
        -DPYTHON_EXECUTABLE="$VENV/bin/python"
) > "$WS/colcon_build.log" 2>&1; then
    grep -E '^(Starting|Finished|Failed)' "$WS/colcon_build.log" || true
    tail -n 40 "$WS/colcon_build.log"
    say "the build failed (whole output: $WS/colcon_build.log)"
    exit 1
fi
grep -E '^(Finished|Failed|Summary)' "$WS/colcon_build.log" || true
say "built in $(( $(date +%s) - started )) s: . $WS/install/setup.sh gives ros2 launch, ros2 pkg and message_filters"
