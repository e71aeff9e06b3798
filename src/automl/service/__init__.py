"""``automl serve``: a long-running HPO service (REST API, queue, auth, SQLite/PostgreSQL store).

Modules, one job each: :mod:`.store` (tables, sessions, migrations), :mod:`.auth` (tokens),
:mod:`.states` (experiment states and transitions), :mod:`.schemas` (API request/response
models), :mod:`.runner` (queue, one child process per running experiment, restart recovery),
:mod:`.worker` (the child's entry point), :mod:`.api` (routes), :mod:`.server` (the command).
"""
