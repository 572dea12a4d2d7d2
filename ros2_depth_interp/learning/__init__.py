"""Training and export (PyTorch): how the shipped network is made.

- ``model``: the shipped network (the pre-fill, then the CNN) and the presets;
- ``prefill``: the parameter-free, intensity-guided pre-fill of the shipped network;
- ``unet``: the candidate networks of the next design (the ``unet`` and ``spn`` presets; not shipped);
- ``losses``: L1, gradient, perceptual (VGG-16) and total-variation terms;
- ``train``: ``depth_interp train``; ``export``: ``depth_interp export`` (checkpoint to ONNX);
- ``prefill_options``: the pre-fill's command-line options shared by ``train`` and ``export``;
- ``datasets``: readers of real depth data sets and the training sampler;
- ``synthetic``: procedural indoor scenes (depth, intensity, intrinsics) with no files;
- ``masks``: semi-dense masks (gradient-adaptive, uniform, LSD-SLAM-like) made from dense depth;
- ``torch_backend``: ``TorchBackend``, the same weights run by PyTorch for ``DepthInterpolator``,
  and the pre-fill alone with the same call.
"""
