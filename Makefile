# Two commands set up a fresh machine: `make demo` and `make test`. Both build .venv on first use.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo overview test bench eval train export train-shipped clean

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

eval: $(STAMP)
	$(VENV)/bin/depth_interp eval $(EVAL_ARGS)

train: $(STAMP)
	$(VENV)/bin/depth_interp train $(TRAIN_ARGS)

export: $(STAMP)
	$(VENV)/bin/depth_interp export $(EXPORT_ARGS)

# Retrains models/depth_interp.onnx's recipe (ten stages, then export) into runs/shipped; DEVICE=cuda|cpu.
train-shipped: $(STAMP)
	PYTHON=$(VPY) scripts/train_shipped_model.sh $(TRAIN_SHIPPED_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info out runs
