"""One module per command. Each has `HELP` (its line in `metrics-sync --help`), `CALLS_API` (whether it
talks to LaunchDarkly, which decides its common options), `configure(parser)` and `run(args, runtime)`.

Heavy libraries are imported inside `run`, so `metrics-sync --version` stays instant.
"""
