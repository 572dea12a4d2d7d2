"""Evaluation on real data: how well the model fills depth, against classical methods.

- ``evaluate``: ``depth_interp eval``, the model and the baselines on the same masks;
- ``metrics``: PSNR, RMSE, MAE, relative error, delta thresholds, only where the truth is valid;
- ``baselines``: nearest, linear (Delaunay), inpainting and colorization fills;
- ``choose_checkpoint``: ``depth_interp choose``, training checkpoints scored on the validation scenes;
- ``figures``: Figure-1-style pictures, bar charts, the rendered point cloud of the overview.
"""
