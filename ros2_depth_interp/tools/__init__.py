"""The commands and the processes they start.

- ``cli``: the ``depth_interp <command>`` dispatcher;
- ``demo``: ``depth_interp demo``, the synthetic sequence through the node over loopback DDS;
- ``bag``: ``depth_interp bag``, the node's processing offline, bag in and rosbag2 out;
- ``bench``: ``depth_interp bench``, latency and throughput of the node end to end;
- ``bench_model``, ``onnx_profile``: ``depth_interp bench --model-only``, the model side by side,
  its graph and ONNX Runtime's operator profile;
- ``bench_keyframes``: ``depth_interp bench-keyframes``, one LSD-SLAM keyframe through the node;
- ``bench_device``: per-frame speed without ROS, on a CPU or a GPU;
- ``replay``, ``recorder``: the publisher and the output recorder that demo and bench start.
"""
