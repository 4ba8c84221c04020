"""A verifiers taskset plugin for tests/test_verifiers.py: verifiers' loader imports it by its id
(``--env.taskset.id verifiers_taskset``, this file being on the tests' path) and takes the ``Taskset`` subclass it
exports in ``__all__``; its tasks are the rows below, each built with the run's task config, as a taskset's
``load`` does."""

from __future__ import annotations

from verifiers.v1 import Task, TaskData, Taskset, TasksetConfig

ROWS = [
    {"name": "string", "prompt": "Write a poem about the sea.", "system_prompt": "You are a poet."},
    {
        "name": "parts",
        "prompt": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Write a poem"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "about mountains."},
                ],
            }
        ],
    },
    {
        "name": "multi-turn",
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Write a poem about the sea."},
        ],
    },
    {"name": "no-prompt", "prompt": None},
]


class FlipSampleTaskset(Taskset[Task[TaskData], TasksetConfig]):
    """The rows above as verifiers tasks, configured by ``config.task`` (the run's ``[env.taskset.task]``)."""

    def load(self):
        for row in ROWS:
            yield Task(TaskData.model_validate(row), self.config.task)


__all__ = ["FlipSampleTaskset"]
