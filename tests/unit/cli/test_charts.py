from tuneloop.cli.charts import sparkline


def test_a_falling_curve_falls() -> None:
    line = sparkline([3.0, 2.5, 2.0, 1.5, 1.0])
    assert line == "█▆▅▃▁"  # 3.0..1.0 mapped onto 8 heights, rounded


def test_long_series_are_resampled_and_flat_ones_do_not_divide_by_zero() -> None:
    assert len(sparkline([float(i) for i in range(1000)], width=40)) == 40
    assert sparkline([1.0, 1.0, 1.0]) == "▁▁▁"
    assert sparkline([]) == ""
