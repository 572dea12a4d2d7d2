"""The parameter table: complete, documented, and its validation catches bad values."""
import math

import pytest

from ros2_depth_interp.core import params

REQUIRED = {
    'model_path', 'providers', 'backend', 'use_mask', 'input_inverse_depth', 'depth_scale', 'sync_slop',
    'sync_queue_size', 'fx', 'fy', 'cx', 'cy', 'publish_cloud', 'cloud_stride', 'min_depth', 'max_depth',
    'min_confidence', 'reliable_outputs', 'diagnostics_period', 'log_throttle_sec', 'intra_op_threads',
    'warmup',
}


def test_every_required_parameter_is_declared_once():
    names = [spec.name for spec in params.PARAMS]
    assert len(names) == len(set(names))
    assert REQUIRED <= set(names), REQUIRED - set(names)


def test_every_parameter_has_a_description_and_a_consistent_default():
    for spec in params.PARAMS:
        assert len(spec.description) > 20, spec.name
        assert params.validate({spec.name: spec.default}) == [], spec.name
        if spec.kind in (params.INTEGER, params.DOUBLE):
            assert spec.value_range is not None, '%s needs a range' % spec.name


def test_defaults_are_valid_and_fresh_copies():
    values = params.defaults()
    assert params.validate(values) == []
    values['providers'].append('Nope')
    assert params.defaults()['providers'] == list(params.DEFAULT_PROVIDERS)


@pytest.mark.parametrize('name, value, fragment', [
    ('cloud_stride', 0, 'cloud_stride must be in [1, 64]'),
    ('cloud_stride', 2.5, 'cloud_stride must be an integer'),
    ('cloud_stride', True, 'cloud_stride must be an integer'),
    ('min_confidence', 1.5, 'min_confidence must be in [0, 1]'),
    ('depth_scale', 0.0, 'depth_scale must be in'),
    ('sync_slop', -0.1, 'sync_slop must be in'),
    ('sync_queue_size', 0, 'sync_queue_size must be in'),
    ('fx', -1.0, 'fx must be in'),
    ('diagnostics_period', 0.0, 'diagnostics_period must be in'),
    ('backend', 'tensorflow', "backend must be one of onnx, torch"),
    ('providers', [], 'providers must be a non-empty list'),
    ('providers', 'CPUExecutionProvider', 'providers must be a string array'),
    ('use_mask', 'yes', 'use_mask must be a bool'),
    ('min_depth', math.nan, 'min_depth must be finite'),
    ('max_depth', math.inf, 'max_depth must be finite'),
    ('model_path', 3, 'model_path must be a string'),
])
def test_bad_single_values_are_reported_by_name(name, value, fragment):
    errors = params.validate({name: value})
    assert len(errors) == 1, errors
    assert fragment in errors[0]


def test_ints_are_accepted_for_doubles():
    assert params.validate({'min_depth': 1, 'max_depth': 10}) == []


def test_unknown_names_are_errors():
    errors = params.validate({'cloud_strid': 2})
    assert errors and 'unknown parameter' in errors[0] and 'cloud_strid' in errors[0]


@pytest.mark.parametrize('values, fragment', [
    ({'fx': 500.0}, 'fx and fy must be set together'),
    ({'fy': 500.0}, 'fx and fy must be set together'),
    ({'cx': 320.0}, 'cx/cy are set but fx/fy are not'),
    ({'min_depth': 5.0, 'max_depth': 2.0}, 'max_depth (2.0) must be greater than min_depth (5.0)'),
])
def test_cross_parameter_rules(values, fragment):
    errors = params.validate(values)
    assert any(fragment in e for e in errors), errors


def test_consistent_cross_parameter_values_pass():
    assert params.validate({'fx': 500.0, 'fy': 510.0, 'cx': 0.0, 'cy': 0.0}) == []
    assert params.validate({'min_depth': 5.0, 'max_depth': 0.0}) == []


def test_runtime_changes_only_for_runtime_parameters():
    current = params.defaults()
    assert params.runtime_change_errors({'cloud_stride': 4, 'min_confidence': 0.5}, current) == []
    errors = params.runtime_change_errors({'use_mask': False}, current)
    assert errors == ['use_mask can only be set at start-up (restart the node to change it)']
    errors = params.runtime_change_errors({'max_depth': 1.0}, dict(current, min_depth=2.0))
    assert any('max_depth' in e for e in errors)
    assert params.runtime_change_errors({'cloud_stride': 0}, current)
    # the runtime set is exactly what the table says
    assert params.RUNTIME_PARAMS == {s.name for s in params.PARAMS if s.runtime}
    assert {'cloud_stride', 'min_depth', 'max_depth', 'min_confidence', 'log_throttle_sec',
            'publish_cloud'} <= params.RUNTIME_PARAMS
    assert not {'model_path', 'use_mask', 'sync_slop', 'reliable_outputs'} & params.RUNTIME_PARAMS


def test_markdown_table_lists_every_parameter():
    table = params.markdown_table()
    lines = table.strip().splitlines()
    assert len(lines) == 2 + len(params.PARAMS)
    for spec in params.PARAMS:
        assert '| `%s` |' % spec.name in table
    assert '`[TensorrtExecutionProvider, CUDAExecutionProvider, CPUExecutionProvider]`' in table


def test_yaml_config_reader_handles_wildcards_and_nesting():
    data = {'/**/depth_interp': {'ros__parameters': {'cloud_stride': 2}},
            'front': {'depth_interp': {'ros__parameters': {'max_depth': 60.0}}},
            'other_node': {'something': 1}}
    got = params.config_from_yaml_dict(data)
    assert got == {'/**/depth_interp': {'cloud_stride': 2}, 'front/depth_interp': {'max_depth': 60.0}}


@pytest.mark.parametrize('doc', ['docs/node.md'])   # the README links to it
def test_docs_parameter_table_is_the_generated_one(doc):
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), doc)
    with open(path) as f:
        text = f.read()
    start = text.index('\n', text.index('<!-- params:begin')) + 1
    end = text.index('<!-- params:end -->')
    assert text[start:end] == params.markdown_table(), 'regenerate with python -m ros2_depth_interp.core.params'
