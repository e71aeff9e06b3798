"""The progress observers: counts per status follow every event (kept up to date, not recounted
at each line), the rich table shows the newest trials and the hyperparameters that differ."""

from __future__ import annotations

import io

from automl.observers.progress import SHOWN, PlainProgress, RichProgress
from automl.results.records import TrialRecord


def _record(index: int, **params) -> TrialRecord:
    return TrialRecord(rec_id=f"t{index:03d}", params=params or {"lr": 0.1, "bs": index % 2},
                       index=index, budget=3, status="running")


def test_plain_lines_count_every_status_change():
    out = io.StringIO()
    progress = PlainProgress("val_miou", "max", total=4, stream=out)
    records = [_record(i) for i in range(1, 5)]
    for record in records:
        progress.trial_started(record)
    records[0].add_result(1, {"val_miou": 0.4})
    progress.trial_result(records[0], {"epoch": 1, "val_miou": 0.4})
    assert progress.counts() == {"running": 4}
    records[1].status = "paused"  # at a rung: no line, the counts move
    progress.trial_status(records[1])
    records[0].status = "completed"
    progress.trial_ended(records[0])
    records[2].status, records[2].failure_class = "failed", "oom"
    progress.trial_ended(records[2])
    progress.trial_ended(records[2])  # an event repeated for the same status counts once
    assert progress.counts() == {"running": 1, "paused": 1, "completed": 1, "failed": 1}
    last = out.getvalue().splitlines()[-1]
    assert "trials 2/4 done, 1 failed, 1 paused, 1 running | best val_miou=0.4 (t001)" in last
    records[1].status = "running"  # promoted
    progress.trial_started(records[1])
    assert progress.counts() == {"running": 2, "completed": 1, "failed": 1}
    assert len(out.getvalue().splitlines()) == 9  # 5 starts, 1 result, 3 ends: no status line


def test_rich_table_shows_the_newest_trials_in_order():
    progress = RichProgress("val_miou", "max", total=50)
    try:
        for index in (7, 3, *range(10, 50), 1):  # out of order, more than the table shows
            progress.trial_started(_record(index, lr=0.1, bs=index % 2))
        table = progress._render()
    finally:
        progress.close()
    shown = list(table.columns[0].cells)
    assert shown == [f"t{i:03d}" for i in range(50 - SHOWN, 50)]
    assert [c.header for c in table.columns][-1] == "params"
    assert all("bs=" in cell and "lr=" not in cell for cell in table.columns[-1].cells)
    assert table.title.startswith("[") and "trials 0/50 done, 43 running" in table.title


def test_parameter_names_are_shortened_only_while_they_stay_unique():
    """Image classification searches ``model.backbone.freeze_backbone`` and
    ``distill.teacher.backbone.freeze_backbone``: shortened to two parts, both would read
    ``backbone.freeze_backbone``."""
    from automl.observers.progress import short_names

    names = ("model.backbone.freeze_backbone", "distill.teacher.backbone.freeze_backbone",
             "train.optim.lr", "dataset.augmentation.random_flip.enable")
    shown = short_names(names)
    assert len(set(shown.values())) == len(names)
    assert shown["train.optim.lr"] == "optim.lr"
    assert shown["dataset.augmentation.random_flip.enable"] == "random_flip.enable"
    assert shown["model.backbone.freeze_backbone"] == "model.backbone.freeze_backbone"
    assert shown["distill.teacher.backbone.freeze_backbone"] == "teacher.backbone.freeze_backbone"
