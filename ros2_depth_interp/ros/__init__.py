"""The rclpy layer: the node and what it needs to talk DDS, on top of ``core``.

- ``node``: the ``depth_interp`` node (subscriptions, synchronizer, worker thread, publishers,
  diagnostics) and ``depth_interp_node``'s ``main``;
- ``keyframe_input``: the node's LSD-SLAM path (keyframes, live frames and the pose graph in;
  world-scale depth, cloud, pose, /tf and the dense map out);
- ``input_sync``: the node's input synchronizer, ROS' ``message_filters`` where importable;
- ``ros_msgs``: numpy buffers to rclpy Image and PointCloud2 messages and back;
- ``private_node``: an rclpy node in a context of its own, for tools sharing a process;
- ``ros_env``: the loopback-only DDS environment (own domain id, temporary log folder) of every
  test, demo and benchmark process.
"""
