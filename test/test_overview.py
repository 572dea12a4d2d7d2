"""The README's picture: a point cloud rendered from a turned viewpoint, under a Figure-1 image."""
import cv2
import numpy as np

from ros2_depth_interp.core.geometry import cloud_to_ply
from ros2_depth_interp.evaluation.figures import overview_array, render_cloud, save_overview


def _two_planes():
    """A far plane (z = 4, dark) and a small near square in front of its centre (z = 2, bright)."""
    ys, xs = np.mgrid[-1:1:80j, -1:1:80j]
    far = np.stack([xs * 2, ys * 2, np.full_like(xs, 4.0), np.full_like(xs, 40.0)], -1).reshape(-1, 4)
    near = np.stack([xs * 0.3, ys * 0.3, np.full_like(xs, 2.0), np.full_like(xs, 250.0)], -1).reshape(-1, 4)
    return np.concatenate([far, near]).astype(np.float32)


def test_render_cloud_paints_near_points_over_far_ones_and_skips_nan():
    cloud = _two_planes()
    with_nan = np.concatenate([cloud, np.full((10, 4), np.nan, np.float32)])
    image = render_cloud(with_nan, width=200, height=200, yaw_deg=0.0, pitch_deg=0.0)
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    painted = (image != 255).any(axis=2)
    assert 0.2 < painted.mean() < 0.95             # the cloud fills most of the view, with a margin
    # seen head on, the centre shows the near square: brighter (intensity 250) than the far plane (40)
    centre, corner = image[95:105, 95:105].astype(int).sum(), image[20:30, 20:30].astype(int).sum()
    assert centre > corner
    assert np.array_equal(render_cloud(cloud, width=200, height=200, yaw_deg=0.0, pitch_deg=0.0), image)


def test_render_cloud_of_nothing_is_blank():
    image = render_cloud(np.full((5, 4), np.nan, np.float32), width=40, height=30)
    assert image.shape == (30, 40, 3) and (image == 255).all()


def test_save_overview_stacks_the_figure_above_the_cloud_at_its_width(tmp_path):
    figure = np.zeros((120, 300, 3), np.uint8)
    cv2.imwrite(str(tmp_path / 'figure1.png'), figure)
    cloud_to_ply(str(tmp_path / 'cloud.ply'), _two_planes())
    path = save_overview(str(tmp_path / 'pictures' / 'overview.png'), tmp_path / 'figure1.png', tmp_path / 'cloud.ply')
    written = cv2.imread(path)
    assert written.shape == (120 + 108, 300, 3)
    assert (written[:120] == 0).all() and (written[120:] != 0).any()
    assert overview_array(figure, _two_planes()).shape == written.shape
