"""The ROS-free runtime: model inference, frame processing, geometry, image encodings, synchronization, parameters, statistics."""
