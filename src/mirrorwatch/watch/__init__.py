"""`mirrorwatch watch`: sweeps and rechecks on a schedule, as a long-running service.

config (the TOML file) -> jobs (a registry of job kinds) -> scheduler (a plain loop over due jobs,
state in `watch_job`, an injectable clock) -> watcher (one per database: a lock the database holds,
signals, the `watcher` row). It sits above sweep and services, beside demo and testhub."""
