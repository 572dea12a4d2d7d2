"""Ctrl-C stops the node cleanly, however the signals fall.

Ctrl-C in a terminal sends SIGINT to every process of the group, and ``ros2 launch`` then forwards one
more to each node, so a node gets two SIGINTs a few milliseconds apart; a stop requested while the node
is still starting up (its model loaded, its publishers not yet created) must end cleanly as well.
Each case runs the real node process and expects exit code 0 and no traceback.
"""
import signal
import time

import pytest

from node_helpers import RUN_NS, NodeProcess, tiny_model, wait_until

NS = RUN_NS + '/stop'


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp('model'))


def _double_sigint(node, gap_s):
    node.proc.send_signal(signal.SIGINT)
    time.sleep(gap_s)
    if node.poll() is None:
        node.proc.send_signal(signal.SIGINT)
    return node.wait(30.0)


# 'listening on': the node runs; 'loaded; backend': the model-loaded line, which comes after
# rclpy.init and before the publishers and subscriptions exist
@pytest.mark.parametrize('ready, gap_s', [('listening on', 0.0), ('listening on', 0.002), ('listening on', 0.02),
                                          ('loaded; backend', 0.002)],
                         ids=['running-0ms', 'running-2ms', 'running-20ms', 'setting-up-topics-2ms'])
def test_two_sigints_stop_the_node_cleanly(model, ready, gap_s):
    node = NodeProcess(['-r', '__ns:=' + NS, '-p', 'model_path:=' + model,
                        '-p', 'providers:=[CPUExecutionProvider]', '-p', 'intra_op_threads:=1'])
    try:
        wait_until(lambda: ready in node.output(), what=repr(ready), process=node)
        rc = _double_sigint(node, gap_s)
    finally:
        node.stop()
    output = node.output()
    assert rc == 0, output[-3000:]
    assert 'Traceback' not in output, output[-3000:]
