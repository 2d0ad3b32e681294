"""One module per command. Each has `HELP` (its line in `metrics-sync --help`), `CALLS_API` (whether it
talks to LaunchDarkly, which decides its common options), `configure(parser)` (its options),
`arguments(namespace)` (argparse's namespace read into the command's frozen arguments value, the only place
that reads the namespace) and `run(arguments, runtime)`. `OWN_OPTIONS` and `OWN_SIGNALS`, when set, hand the
command line and Ctrl-C to the command itself (the emulator).

Heavy libraries are imported inside `run`, so `metrics-sync --version` stays instant.
"""
