"""The rclpy layer: the node, message filling, and the DDS environment for tests and tools."""
