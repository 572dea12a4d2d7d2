"""The layers: ``core`` runs without rclpy and torch and never imports the layers above it.

Two checks, one at run time and one on the source: a subprocess in which rclpy, torch and the
upper subpackages cannot be imported imports every core module and fills a frame with the shipped
model; and the import statements of every ``core/*.py`` (module level or inside a function) name
none of them.
"""
import ast
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'ros2_depth_interp')
CORE_FILES = sorted(glob.glob(os.path.join(PACKAGE, 'core', '*.py')))
SUBPACKAGES = ('core', 'ros', 'learning', 'evaluation', 'tools')
# what core must not import: the third-party roots, and the package's upper layers
FORBIDDEN_ROOTS = ('rclpy', 'torch')
UPPER_LAYERS = tuple('ros2_depth_interp.' + name for name in SUBPACKAGES if name != 'core')

# Runs in a fresh interpreter: a meta-path finder first in line refuses every forbidden name, so an
# import of one anywhere (at module level or lazily inside a call) raises ImportError.
BLOCKED_PROCESS = r'''
import importlib, json, sys

FORBIDDEN = %(forbidden)r


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if any(name == root or name.startswith(root + '.') for root in FORBIDDEN):
            raise ImportError('blocked for the layering test: ' + name)
        return None


sys.meta_path.insert(0, Refuse())
sys.path.insert(0, %(root)r)
import numpy as np

for name in %(modules)r:
    importlib.import_module(name)

from ros2_depth_interp import DepthInterpolator
rng = np.random.default_rng(0)
h, w = 48, 64
yy, xx = np.mgrid[0:h, 0:w]
depth_true = (2.0 + 0.02 * xx + 0.01 * yy).astype(np.float32)
intensity = ((xx * 4 + yy * 2) %% 256).astype(np.uint8)
mask = rng.random((h, w)) < 0.1
sparse = np.where(mask, depth_true, 0.0).astype(np.float32)
result = DepthInterpolator(providers=['CPUExecutionProvider']).run(sparse, mask, intensity)
loaded = sorted(m for m in sys.modules if any(m == r or m.startswith(r + '.') for r in FORBIDDEN))
print(json.dumps({
    'shape': list(result.depth.shape),
    'finite': bool(np.isfinite(result.depth).all()),
    'largest_error': float(np.abs(result.depth - depth_true).max()),
    'confidence_range': [float(result.confidence.min()), float(result.confidence.max())],
    'forbidden_loaded': loaded,
}))
'''


def _core_module_names():
    names = ['ros2_depth_interp', 'ros2_depth_interp.core']
    return names + ['ros2_depth_interp.core.' + os.path.basename(f)[:-3]
                    for f in CORE_FILES if not f.endswith('__init__.py')]


def _imported_names(path):
    """Every module an import statement in the file names, relative imports resolved against core."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module
            else:
                parts = ['ros2_depth_interp', 'core'][:3 - node.level] if node.level <= 2 else []
                base = '.'.join(parts + ([node.module] if node.module else []))
            names.append(base)
            # ``from .. import ros`` names the subpackage in the alias, not in the module
            names += [base + '.' + alias.name for alias in node.names]
    return names


def _forbidden(name):
    return any(name == root or name.startswith(root + '.') for root in FORBIDDEN_ROOTS + UPPER_LAYERS)


def test_core_imports_and_fills_a_frame_where_rclpy_and_torch_cannot_be_imported():
    model = os.path.join(ROOT, 'models', 'depth_interp.onnx')
    if not os.path.isfile(model):
        pytest.skip('the shipped model models/depth_interp.onnx is not in this checkout')
    code = BLOCKED_PROCESS % {'forbidden': FORBIDDEN_ROOTS + UPPER_LAYERS, 'root': ROOT,
                              'modules': _core_module_names()}
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report['shape'] == [48, 64] and report['finite']
    # a smooth slanted plane, 10 % known: the shipped model fills it to within a few centimetres
    assert report['largest_error'] < 0.2
    low, high = report['confidence_range']
    assert 0.0 <= low <= high <= 1.0
    assert report['forbidden_loaded'] == []


def test_the_blocking_finder_really_refuses_torch():
    # the run-time check above is only worth something if the finder bites
    code = BLOCKED_PROCESS.split('sys.path.insert')[0] % {'forbidden': FORBIDDEN_ROOTS}
    run = subprocess.run([sys.executable, '-c', code + '\nimport torch\n'], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0 and 'blocked for the layering test: torch' in run.stderr


def test_no_core_module_imports_ros_learning_evaluation_tools_rclpy_or_torch():
    assert len(CORE_FILES) >= 10
    offenders = {}
    for path in CORE_FILES:
        bad = sorted({name for name in _imported_names(path) if _forbidden(name)})
        if bad:
            offenders[os.path.relpath(path, ROOT)] = bad
    assert offenders == {}


def test_the_static_check_sees_relative_and_lazy_imports(tmp_path):
    sample = tmp_path / 'sample.py'
    sample.write_text('from ..learning import model\n'
                      'from .. import tools\n'
                      'def f():\n    import torch.nn\n'
                      'from .geometry import CameraIntrinsics\n')
    names = _imported_names(str(sample))
    assert [n for n in names if _forbidden(n)] == ['ros2_depth_interp.learning', 'ros2_depth_interp.learning.model',
                                                   'ros2_depth_interp.tools', 'torch.nn']
    assert 'ros2_depth_interp.core.geometry' in names


@pytest.mark.parametrize('name', SUBPACKAGES)
def test_each_subpackage_says_what_it_holds(name):
    init = os.path.join(PACKAGE, name, '__init__.py')
    with open(init) as f:
        doc = ast.get_docstring(ast.parse(f.read()))
    assert doc and len(doc.split()) >= 8, '%s/__init__.py needs a docstring saying what the layer holds' % name
