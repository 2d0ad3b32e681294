"""The command line: typed arguments per command, dispatch, errors to exit codes."""
