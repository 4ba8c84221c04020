"""The exit status of every ``flip-reward`` command and launcher, in one place (docs/reference.md lists when each is
used): the CLI returns them, the training loop and the open-instruct watchdog end with them."""

EXIT_RUN_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_JUDGE_DOWN = 3
EXIT_WRITE_FAILED = 4  # an output could not be written midway (OutputError: a full disk, an I/O error)
EXIT_INTERRUPTED = 130
