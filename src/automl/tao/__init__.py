"""TAO's dialect: the one place that knows how TAO's containers write status and checkpoints.

* :mod:`automl.tao.lines` - parsing ``status.json`` (JSON Lines, a pretty-printed array, torn
  or stray lines), whole or tailed live, top-level or per-action;
* :mod:`automl.tao.progress` - what the lines mean: results keyed by *epochs completed*
  (TAO writes Lightning's 0-based ``current_epoch``; KPIs arrive without an epoch and persist);
* :mod:`automl.tao.checkpoints` - ``model_epoch_EEE_step_SSSSS.pth`` (0-based EEE), the exact file
  after E epochs, and the resume pointer.

Everything outside this package speaks epochs completed (a budget). The facts are pinned in the
golden fixtures of ``tests/fixtures/tao_golden`` (their README names TAO's source files).
"""
