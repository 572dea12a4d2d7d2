"""Best-effort 1.2 MB frames between two processes under the project's own DDS environment.

A 640x480 32FC1 image (1.2 MB) does not fit Fast DDS's default 512 KB shared-memory segment; the
shipped profile (config/fastdds_large_shm.xml) makes it 64 MB, and ``ros_env`` hands it to Fast DDS
under the variable its major version reads (Fast DDS 2 on Jazzy, 3 on Kilted). A publisher process
sends 60 such frames at 10 Hz once it sees the subscriber; this process counts what arrives. With
the profile missing or ignored about half are lost; at most 2 of 60 may be.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from node_helpers import REPO, RUN_NS, wait_until

FRAMES = 60
MAX_LOST = 2
HEIGHT, WIDTH = 480, 640
FRAME_BYTES = HEIGHT * WIDTH * 4
TOPIC = RUN_NS + '/large_frames'
QOS = dict(history=HistoryPolicy.KEEP_LAST, depth=FRAMES, reliability=ReliabilityPolicy.BEST_EFFORT)

# The publisher: waits for the subscriber (matching, not a sleep), sends the frames paced at 10 Hz,
# says so on stdout, and keeps its participant (and so its shared memory) until stdin closes.
PUBLISHER = '''
import sys, time
import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
topic, frames, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rclpy.init()
node = rclpy.create_node('large_frame_publisher')
pub = node.create_publisher(Image, topic, QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=frames,
                                                     reliability=ReliabilityPolicy.BEST_EFFORT))
deadline = time.monotonic() + 120
while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
    time.sleep(0.01)
data = np.random.default_rng(0).random((height, width), dtype=np.float32).tobytes()
for index in range(frames):
    msg = Image(height=height, width=width, encoding='32FC1', step=width * 4, data=data)
    msg.header.frame_id = str(index)
    pub.publish(msg)
    time.sleep(0.1)
print('published %d' % frames, flush=True)
sys.stdin.read()
node.destroy_node()
rclpy.shutdown()
'''


def test_best_effort_large_frames_arrive_between_two_processes():
    received = set()
    sizes_ok = []
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('large_frame_subscriber', context=context)

    def on_frame(msg):
        received.add(int(msg.header.frame_id))
        sizes_ok.append(len(msg.data) == FRAME_BYTES)

    node.create_subscription(Image, TOPIC, on_frame, QoSProfile(**QOS))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    publisher = subprocess.Popen(
        [sys.executable, '-c', PUBLISHER, TOPIC, str(FRAMES), str(HEIGHT), str(WIDTH)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ), cwd=REPO)
    try:
        line = publisher.stdout.readline()
        assert line.startswith('published'), line + publisher.stdout.read()
        # the last frames may still be on their way: wait for them, but not forever
        try:
            wait_until(lambda: len(received) == FRAMES, timeout=10, what='every frame')
        except AssertionError:
            pass
    finally:
        publisher.stdin.close()
        publisher.wait(timeout=60)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        spin.join(timeout=10)
    lost = FRAMES - len(received)
    print('large frames: %d of %d best-effort %.1f MB frames arrived (%d lost)'
          % (len(received), FRAMES, FRAME_BYTES / 1e6, lost))
    assert all(sizes_ok)
    assert lost <= MAX_LOST, 'lost %d of %d 1.2 MB frames: is the Fast DDS profile applied?' % (lost, FRAMES)
