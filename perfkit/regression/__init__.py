"""Performance-regression checks behind perfkit's pytest plugin.

Modules (each imported only when a test actually measures something, so that
loading the pytest plugin stays cheap):

* ``options``  – parsing of durations, percentages and ``@pytest.mark.perf`` arguments
* ``measure``  – warm-up, calibration and timed rounds (stdlib only)
* ``stats``    – the decision: bootstrap CI of the ratio of medians -> verdict
* ``machine``  – machine description and git commit stored with each run
* ``storage``  – the ``perfkit_benchmarks`` table (SQLAlchemy Core)
* ``report``   – the terminal summary table
* ``plot``     – ``benchmark_history_figure(frame, test)`` (plotly)
"""
