"""ros2_depth_interp: dense depth from semi-dense monocular SLAM depth with a compact CNN."""

__version__ = '0.7.0'
__all__ = ['DepthInterpolator', '__version__']


def __getattr__(name):
    # Lazy, so that importing a small core module never pulls in ONNX Runtime.
    if name == 'DepthInterpolator':
        from .core.inference import DepthInterpolator
        return DepthInterpolator
    raise AttributeError(name)
