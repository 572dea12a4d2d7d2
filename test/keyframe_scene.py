"""LSD-SLAM keyframes synthesized from a rendered scene with known depth and pose (test helper).

``scene_keyframe`` renders frame ``index`` of a ``SyntheticSequence`` (metric depth, the camera's
world pose), keeps 8x8 blocks of pixels in a checkerboard as the "semi-dense" estimate (so that
the viewer's near-support rule keeps them), and writes them as LSD-SLAM would: inverse depth in a
keyframe scale ``1 / scale`` of the world's, with camToWorld = Sim(3)(scale, R, t).
"""
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ros2_depth_interp.core.lsd_slam import Sim3, keyframe_fields
from ros2_depth_interp.learning.synthetic import SyntheticSequence

H, W = 48, 64
TIME0 = 1600000000.0


@dataclass
class SceneKeyframe:
    fields: dict            # keyframe message fields (lsd_slam_viewer names, as lsd_slam.keyframe_fields)
    depth: np.ndarray       # rendered metric (world-scale) depth, (H, W)
    known: np.ndarray       # the pixels given to the keyframe
    K: np.ndarray
    rotation: np.ndarray    # camera-to-world rotation
    position: np.ndarray    # camera position in the world
    scale: float
    sim3: Sim3

    def world_points(self):
        """(H, W, 3) world coordinates of every pixel from the rendered depth."""
        v, u = np.mgrid[0:self.depth.shape[0], 0:self.depth.shape[1]]
        fx, fy, cx, cy = self.K[0, 0], self.K[1, 1], self.K[0, 2], self.K[1, 2]
        camera = np.stack([(u - cx) / fx * self.depth, (v - cy) / fy * self.depth, self.depth], axis=-1)
        return camera @ self.rotation.T + self.position


def scene_keyframe(index=0, seed=5, scale=8.0, kf_id=None, time=None, height=H, width=W):
    sequence = SyntheticSequence(seed=seed, height=height, width=width, n_frames=100)
    frame = sequence[index]
    pose = sequence.pose(index)
    depth, K = frame['depth'], frame['K']
    v, u = np.mgrid[0:height, 0:width]
    known = ((u // 8 + v // 8) % 2 == 0)
    idepth = np.where(known, scale / depth, -1.0).astype(np.float32)
    variance = np.where(known, 1e-3 * idepth ** 2, -1.0).astype(np.float32)
    quaternion = Rotation.from_matrix(pose.rotation).as_quat()     # x y z w
    sim3 = Sim3.from_scale_rotation_translation(scale, quaternion, pose.position)
    fields = keyframe_fields(idepth, variance, frame['intensity'], K[0, 0], K[1, 1], K[0, 2], K[1, 2],
                             cam_to_world=sim3, id=index if kf_id is None else kf_id,
                             time=TIME0 + index if time is None else time)
    return SceneKeyframe(fields, depth, known, K, np.asarray(pose.rotation), np.asarray(pose.position),
                         scale, sim3)


def ros2_fields(fields):
    """lsd_slam_viewer field names -> lsd_slam_msgs/Keyframe names."""
    out = dict(fields)
    out['is_keyframe'] = out.pop('isKeyframe')
    out['cam_to_world'] = out.pop('camToWorld')
    return out


def keyframe_msg(fields):
    """An rclpy ``lsd_slam_msgs/Keyframe`` from keyframe fields (either spelling)."""
    from ros2_depth_interp.ros.ros_msgs import make_keyframe
    return make_keyframe(ros2_fields(fields) if 'isKeyframe' in fields else fields)
