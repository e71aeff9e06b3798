"""The CLI's commands beyond run/resume: status, report, handoff, ui, cleanup."""
