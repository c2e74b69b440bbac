"""Custom metrics: register_metric, the decorator, final metrics, default vs per-run registries, load_metric_spec."""

from __future__ import annotations

import pytest

from promptomatix.errors import MetricError
from promptomatix.metrics import MetricRegistry, MetricResult, MetricsManager, load_metric_spec, register_metric
from promptomatix.metrics.registry import default_registry


def test_register_metric_new_task_type():
    reg = MetricRegistry()
    register_metric("tone", lambda ex, pred: pred["out"] == "polite", registry=reg)
    mm = MetricsManager(output_fields=["out"], lambda_penalty=0, registry=reg)
    assert mm.score("tone", {}, {"out": "polite"}).score == 1.0
    assert mm.score("Tone", {}, {"out": "rude"}).score == 0.0
    assert "tone" in mm.known_task_types()


def test_decorator_and_rich_returns():
    reg = MetricRegistry()

    @register_metric("brevity", registry=reg)
    def brevity(example, pred):
        n = len(pred["out"].split())
        return (1.0 if n <= 3 else 0.0), f"{n} words"

    assert callable(brevity)
    mm = MetricsManager(output_fields=["out"], registry=reg)
    res = mm.score("brevity", {}, {"out": "one two three four"})
    assert res == MetricResult(0.0, "4 words")


def test_final_metric_separate_from_training():
    reg = MetricRegistry()
    register_metric("style", lambda ex, pred: 0.25, final=lambda ex, pred: {"score": 0.75}, registry=reg)
    mm = MetricsManager(output_fields=["out"], lambda_penalty=0, registry=reg)
    assert mm.get_metrics_for_task("style")({}, {}) == 0.25
    assert mm.get_final_eval_metrics("style")({}, {}) == 0.75


def test_override_builtin_in_own_registry_only():
    reg = MetricRegistry()
    register_metric("classification", lambda ex, pred: 0.5, registry=reg)
    custom = MetricsManager(output_fields=["label"], registry=reg)
    stock = MetricsManager(output_fields=["label"], registry=MetricRegistry())
    assert custom.score("classification", {"label": "a"}, {"label": "a"}).score == 0.5
    assert stock.score("classification", {"label": "a"}, {"label": "a"}).score == 1.0


def test_default_registry_is_seen_unless_another_is_given():
    register_metric("zz_test_default_type", lambda ex, pred: 1.0)
    try:
        assert MetricsManager(output_fields=["o"]).score("zz_test_default_type", {}, {}).score == 1.0
        isolated = MetricsManager(output_fields=["o"], registry=MetricRegistry())
        with pytest.raises(MetricError, match="unknown task type"):
            isolated.score("zz_test_default_type", {}, {})
    finally:
        default_registry.unregister("zz_test_default_type")
    assert "zz_test_default_type" not in default_registry.names()


def test_out_of_range_custom_score_is_an_error():
    reg = MetricRegistry()
    register_metric("pct", lambda ex, pred: 87, registry=reg)
    with pytest.raises(MetricError, match="outside"):
        MetricsManager(output_fields=["o"], registry=reg).score("pct", {}, {})


def test_load_metric_spec_module_and_file(tmp_path, monkeypatch):
    (tmp_path / "zz_user_metrics.py").write_text("def tone(example, pred):\n    return 1.0\nVALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = load_metric_spec("zz_user_metrics:tone")
    assert fn({}, {}) == 1.0
    from_file = load_metric_spec(f"{tmp_path / 'zz_user_metrics.py'}:tone")
    assert from_file({}, {}) == 1.0


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("no_colon_here", "expected module:function"),
        ("zz_no_such_module_abc:fn", "cannot import metric module"),
        ("zz_user_metrics2:missing", "has no attribute 'missing'"),
        ("zz_user_metrics2:VALUE", "not callable"),
        ("/nonexistent/dir/m.py:fn", "not found"),
        ("zz_user_metrics_exits:fn", "exited (SystemExit: 2)"),  # argparse at import ended the process silently
    ],
)
def test_load_metric_spec_errors(spec, fragment, tmp_path, monkeypatch):
    (tmp_path / "zz_user_metrics2.py").write_text("VALUE = 3\n")
    (tmp_path / "zz_user_metrics_exits.py").write_text("import sys\nsys.exit(2)\ndef fn(e, p):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MetricError) as err:
        load_metric_spec(spec)
    assert fragment in str(err.value)
    assert err.value.hint  # every error names a fix
    assert "\n" not in str(err.value)


def test_numeric_returns_of_any_number_type_are_scores():
    """numpy ints and bools and Decimal were refused ("a metric must return a number"); np.float64 was not."""
    from decimal import Decimal
    from fractions import Fraction

    import numpy as np

    from promptomatix.metrics.registry import coerce_result

    for value, score in [(np.int64(1), 1.0), (np.True_, 1.0), (Decimal("0.5"), 0.5), (Fraction(1, 4), 0.25)]:
        assert coerce_result(value).score == score
    for bad in ["0.5", b"1", 1 + 0j]:
        with pytest.raises(MetricError):
            coerce_result(bad)


def test_a_metric_that_exits_is_a_metric_error_not_the_end_of_the_process():
    def exits(example, pred):
        raise SystemExit(3)

    reg = MetricRegistry()
    register_metric("quits", exits, registry=reg)
    with pytest.raises(MetricError, match="raised SystemExit"):
        MetricsManager(output_fields=["o"], registry=reg).score("quits", {}, {})


def test_a_metric_module_in_the_current_directory_imports_as_with_python_m(tmp_path, monkeypatch):
    """The installed `promptomatix` puts its script's directory on sys.path, not the current one: `--metric
    mymet:m` beside mymet.py could not be imported, and the hint said to run from that directory."""
    import sys

    (tmp_path / "pmx_cwd_metric.py").write_text("def m(example, prediction):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "pmx_cwd_metric", raising=False)
    fn = load_metric_spec("pmx_cwd_metric:m")
    assert fn({}, {}) == 1.0 and str(tmp_path) not in sys.path  # the path is left as it was
