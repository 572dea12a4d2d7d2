"""Launch files and configs, checked as far as possible without ``launch``/``launch_ros``.

``launch`` is not installable here, so the launch files are read as Python source (AST): they must
compile, every parameter they set and every key in the shipped YAML configs must be a parameter the
node declares, every launch argument they read must be declared, every remapping must name one of
the node's topics, every file they name must exist in the package, and every executable of this
package they start must be a console script in setup.py. The YAML configs are also loaded by the
real ROS parameter parser into real node instances (in this process, one per namespace), so
wildcards, per-namespace overrides and value types are checked by rclpy itself.
"""
import ast
import glob
import os
import py_compile
import xml.etree.ElementTree as ET

import pytest
import rclpy
import yaml

from ros2_depth_interp.core import params

from node_helpers import REPO, tiny_model

PACKAGE = 'ros2_depth_interp'
LAUNCH_FILES = sorted(glob.glob(os.path.join(REPO, 'launch', '*.launch.py')))
CONFIG_YAMLS = [os.path.join(REPO, 'config', name) for name in ('robot.yaml', 'autonomous_vehicle.yaml')]
NODE_TOPICS = {'semi_dense_depth', 'image', 'mask', 'camera_info', 'dense_depth', 'dense_confidence', 'points'}
FILE_SUFFIXES = ('.yaml', '.yml', '.rviz', '.xml', '.onnx', '.launch.py')


def parse(path):
    with open(path) as f:
        return ast.parse(f.read(), filename=path)


def calls(tree, func_name):
    """Every call of ``func_name(...)`` (plain name or attribute) in the tree."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name == func_name:
                yield node


def keyword(call, name):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def constant(node):
    return node.value if isinstance(node, ast.Constant) else None


def assignments(tree, name):
    """Values assigned to ``name`` anywhere in the file, and values appended to it."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            found.append(node.value)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'append'
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name):
            found.extend(node.args)
    return found


def resolve(tree, expr, depth=0):
    """Expand names and lists in a ``parameters=`` expression to its leaves (dicts, strings, substitutions)."""
    if depth > 5:
        return []
    if isinstance(expr, (ast.List, ast.Tuple)):
        return [leaf for element in expr.elts for leaf in resolve(tree, element, depth + 1)]
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return resolve(tree, expr.left, depth + 1) + resolve(tree, expr.right, depth + 1)
    if isinstance(expr, ast.Name):
        values = assignments(tree, expr.id)
        return [leaf for value in values for leaf in resolve(tree, value, depth + 1)] if values else [expr]
    return [expr]


def our_nodes(tree):
    """Node(...) calls that start this package's executable."""
    return [call for call in calls(tree, 'Node') if constant(keyword(call, 'package')) == PACKAGE
            or (isinstance(keyword(call, 'package'), ast.Name) and keyword(call, 'package').id == 'PACKAGE')]


def console_scripts():
    tree = parse(os.path.join(REPO, 'setup.py'))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if constant(key) == 'console_scripts':
                    entries = [constant(e) for e in value.elts]
                    return {e.split('=')[0].strip(): e.split('=')[1].strip() for e in entries}
    raise AssertionError('setup.py declares no console_scripts')


def test_the_expected_launch_files_exist():
    names = {os.path.basename(p) for p in LAUNCH_FILES}
    assert {'depth_interp.launch.py', 'robot.launch.py', 'autonomous_vehicle.launch.py'} <= names


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=os.path.basename)
def test_launch_file_compiles_and_defines_the_entry_point(path, tmp_path):
    py_compile.compile(path, cfile=str(tmp_path / 'compiled.pyc'), doraise=True)
    tree = parse(path)
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description' for n in tree.body)
    assert ast.get_docstring(tree), 'say how to use it'
    assert our_nodes(tree), 'starts no %s node' % PACKAGE


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=os.path.basename)
def test_every_parameter_set_in_a_launch_file_is_declared(path):
    tree = parse(path)
    for call in our_nodes(tree):
        expr = keyword(call, 'parameters')
        assert expr is not None, 'every node gets its parameters explicitly'
        for leaf in resolve(tree, expr):
            if isinstance(leaf, ast.Dict):
                values = {}
                for key, value in zip(leaf.keys, leaf.values):
                    name = constant(key)
                    assert name in params.SPECS, '%s sets unknown parameter %r' % (os.path.basename(path), name)
                    if constant(value) is not None:
                        values[name] = constant(value)
                assert params.validate(values) == [], (path, values)


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=os.path.basename)
def test_arguments_remappings_and_executables(path):
    tree = parse(path)
    declared = {constant(c.args[0]) for c in calls(tree, 'DeclareLaunchArgument') if c.args}
    for value in assignments(tree, 'ARGUMENTS'):      # table-driven declarations
        declared |= {constant(t.elts[0]) for t in value.elts}
    declared.discard(None)
    used = {constant(c.args[0]) for name in ('LaunchConfiguration', 'arg') for c in calls(tree, name) if c.args}
    used.discard(None)
    assert used <= declared, 'undeclared launch arguments: %s' % (used - declared)

    scripts = console_scripts()
    for call in our_nodes(tree):
        executable = constant(keyword(call, 'executable'))
        assert executable in scripts, executable
        remappings = keyword(call, 'remappings')
        for pair in (remappings.elts if remappings is not None else []):
            assert constant(pair.elts[0]) in NODE_TOPICS, ast.dump(pair)


def test_depth_interp_launch_has_the_documented_arguments():
    tree = parse(os.path.join(REPO, 'launch', 'depth_interp.launch.py'))
    names = {constant(t.elts[0]) for value in assignments(tree, 'ARGUMENTS') for t in value.elts}
    assert {'namespace', 'params_file', 'model_path', 'depth_topic', 'image_topic', 'mask_topic',
            'camera_info_topic'} <= names


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=os.path.basename)
def test_every_file_a_launch_file_names_exists_in_the_package(path):
    tree = parse(path)
    named = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List):
            parts = [constant(e) for e in node.elts if isinstance(constant(e), str)]
            if parts and parts[-1].endswith(FILE_SUFFIXES):
                named.append(os.path.join(*parts))        # [share, 'config', 'x.yaml'] -> config/x.yaml
    for node in ast.walk(tree):
        value = constant(node)
        if isinstance(value, str) and value.endswith(FILE_SUFFIXES) and not any(n.endswith(value) for n in named):
            named.append(value)
    for relative in named:
        candidates = [os.path.join(REPO, relative)] + [os.path.join(REPO, d, relative)
                                                       for d in ('config', 'launch', 'models')]
        assert any(os.path.isfile(c) for c in candidates), '%s names missing file %s' % (path, relative)
        folder = relative.split(os.sep)[0]
        if folder in ('config', 'launch', 'models'):
            with open(os.path.join(REPO, 'setup.py')) as f:
                assert "'%s/" % folder in f.read(), '%s/ is not installed by setup.py' % folder


def test_entry_points_resolve():
    import importlib
    for name, target in console_scripts().items():
        module, function = target.split(':')
        assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.parametrize('path', CONFIG_YAMLS, ids=os.path.basename)
def test_every_config_key_is_a_declared_parameter(path):
    with open(path) as f:
        nodes = params.config_from_yaml_dict(yaml.safe_load(f))
    assert nodes, 'no ros__parameters block'
    merged = {}
    for key, values in nodes.items():
        assert key.endswith('depth_interp'), key
        unknown = set(values) - set(params.SPECS)
        assert not unknown, '%s: unknown parameters %s' % (key, unknown)
        merged.update(values)
    assert params.validate(merged) == []


def test_vehicle_config_has_one_block_per_camera_of_the_launch_file():
    tree = parse(os.path.join(REPO, 'launch', 'autonomous_vehicle.launch.py'))
    cameras = [constant(e) for value in assignments(tree, 'CAMERAS') for e in value.elts]
    assert cameras == ['front', 'left', 'right']
    with open(os.path.join(REPO, 'config', 'autonomous_vehicle.yaml')) as f:
        keys = set(params.config_from_yaml_dict(yaml.safe_load(f)))
    assert {'/%s/depth_interp' % c for c in cameras} <= keys


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp('model'))


@pytest.mark.parametrize('config, namespace, expected', [
    ('robot.yaml', '/', {'input_inverse_depth': True, 'use_mask': False, 'reliable_outputs': True}),
    ('robot.yaml', '/somewhere', {'input_inverse_depth': True, 'min_confidence': 0.2}),
    ('autonomous_vehicle.yaml', '/front', {'max_depth': 60.0, 'cloud_stride': 2, 'min_depth': 0.5}),
    ('autonomous_vehicle.yaml', '/left', {'max_depth': 40.0, 'cloud_stride': 3, 'use_mask': True}),
    ('autonomous_vehicle.yaml', '/right', {'max_depth': 40.0, 'cloud_stride': 3}),
])
def test_configs_load_into_the_real_node(model, config, namespace, expected):
    """rcl's YAML parser + the node's own declarations: wildcards, overrides and types agree."""
    from ros2_depth_interp.ros.node import DepthInterpNode
    context = rclpy.Context()
    rclpy.init(context=context, args=['--ros-args', '--params-file', os.path.join(REPO, 'config', config),
                                      '-p', 'model_path:=' + model, '-p', 'providers:=[CPUExecutionProvider]',
                                      '-p', 'warmup:=false'])
    try:
        node = DepthInterpNode(context=context, namespace=namespace)
        try:
            for name, value in expected.items():
                assert node.get_parameter(name).value == value, name
            assert params.validate(node.values) == []
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_rviz_config_shows_cloud_and_dense_depth_reliably():
    with open(os.path.join(REPO, 'config', 'depth_interp.rviz')) as f:
        rviz = yaml.safe_load(f)
    displays = {d['Class']: d for d in rviz['Visualization Manager']['Displays'] if d.get('Enabled')}
    cloud = displays['rviz_default_plugins/PointCloud2']
    image = displays['rviz_default_plugins/Image']
    assert cloud['Topic']['Value'] == '/points' and cloud['Topic']['Reliability Policy'] == 'Reliable'
    assert image['Topic']['Value'] == '/dense_depth' and image['Topic']['Reliability Policy'] == 'Reliable'


def test_package_xml():
    path = os.path.join(REPO, 'package.xml')
    root = ET.parse(path).getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == PACKAGE
    exec_depends = {e.text for e in root.findall('exec_depend')}
    assert {'rclpy', 'sensor_msgs', 'std_msgs', 'builtin_interfaces', 'diagnostic_msgs', 'launch', 'launch_ros',
            'python3-numpy', 'python3-opencv'} <= exec_depends
    assert 'python3-pytest' in {e.text for e in root.findall('test_depend')}
    assert root.find('export').findtext('build_type') == 'ament_python'
    with open(path) as f:
        text = f.read()
    assert 'onnxruntime-gpu' in text and 'pip install onnxruntime' in text
    with open(os.path.join(REPO, 'setup.py')) as f:
        assert "version='%s'" % root.findtext('version') in f.read()
