"""The exit status of every ``flip-reward`` command and launcher, in one place, with the meaning each command's
``--help`` gives it (docs/reference.md lists when each is used): the CLI returns them, the training loop and the
open-instruct watchdog end with them."""

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_JUDGE_DOWN = 3
EXIT_WRITE_FAILED = 4  # an output could not be written midway (OutputError: a full disk, an I/O error)
EXIT_INTERRUPTED = 130

MEANINGS = {
    EXIT_OK: "success",
    EXIT_RUN_FAILED: "the run failed",
    EXIT_INVALID_INPUT: "invalid input or settings",
    EXIT_JUDGE_DOWN: "the judge is down",
    EXIT_WRITE_FAILED: "an output could not be written midway",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
"""The short meaning of each exit status, as the help pages and docs/reference.md's table word it."""

STOPPED_BY_SIGNAL = ("128+N", "stopped by signal N (SIGTERM: 143, SIGHUP: 129)")
"""The status of a command that turns SIGTERM and SIGHUP into an orderly stop (``flip-reward train``), as shown."""
