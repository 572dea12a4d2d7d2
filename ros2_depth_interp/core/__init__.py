"""The ROS-free runtime: everything one frame needs, from message fields to a point cloud.

Needs numpy, OpenCV and ONNX Runtime only; never rclpy, torch, or the ``ros``, ``learning``,
``evaluation`` and ``tools`` layers (``test/test_layering.py`` checks it).

- ``inference``: ``DepthInterpolator``, the model run by ONNX Runtime (or a backend object);
- ``preprocess``: what the network sees (median normalization, stride padding, cropping back);
- ``pipeline``: ``FrameProcessor``, one frame's arrays in and dense depth, confidence, cloud out;
- ``geometry``: intrinsics, camera rays, the organized point cloud, PLY files;
- ``encodings``: sensor_msgs/Image fields to numpy and back, cv_bridge semantics;
- ``sync``: the approximate-time synchronizer and the newest-set mailbox;
- ``params``: every node parameter declared once, with its validation;
- ``stats``: counters, rates and per-stage latency for diagnostics;
- ``resources``: where the shipped model, configs and launch files are;
- ``lsd_slam``: decoding LSD-SLAM keyframe messages and filtering their points;
- ``keyframes``: LSD-SLAM keyframes to dense world-scale depth, clouds and a dense map.
"""
