"""grpo_fast.py arguments given to the GRPO scripts when their local backend runs: mapped onto ``flip-reward train``.

``BACKEND=auto`` picks the local backend on a machine without CUDA or open-instruct, so arguments written for
upstream's ``grpo_fast.py`` (``--learning_rate 1e-6``) reach ``flip-reward train``, whose options are spelled with
dashes. Those with an equivalent are translated (and said so in one line); any other underscore-style argument is
refused with one line naming it and the backend, since dropping it silently would train with another setting
(``flip_reward.launch.local`` says both).
"""

from __future__ import annotations

# grpo_fast.py flag -> flip-reward train flag (values carried over as they are)
EQUIVALENTS = {
    "--model_name_or_path": "--model",
    "--exp_name": "--exp-name",
    "--output_dir": "--output-dir",
    "--seed": "--seed",
    "--learning_rate": "--learning-rate",
    "--beta": "--beta",
    "--temperature": "--temperature",
    "--num_samples_per_prompt_rollout": "--num-generations",
    "--num_unique_prompts_rollout": "--prompts-per-step",
    "--response_length": "--max-completion-length",
    "--max_prompt_token_length": "--max-prompt-length",
    "--llm_judge_model": "--judge",
    "--llm_judge_max_tokens": "--judge-max-tokens",
    "--llm_judge_max_context_length": "--judge-max-context",
    "--llm_judge_timeout": "--judge-timeout",
    "--llm_judge_temperature": "--judge-temperature",
    "--dataset_mixer_list": "--datasets",
    "--dataset_mixer_list_splits": "--dataset-splits",
}
SWITCHES = {"--with_tracking": ["--report-to", "wandb"]}  # grpo_fast switches -> flip-reward train arguments
JOINED = {"--datasets", "--dataset-splits"}  # grpo_fast takes several values; flip-reward train one string


class UnmappedArgument(ValueError):
    """A grpo_fast.py argument with no flip-reward train equivalent."""


def split_flags(arguments: list[str]) -> list[tuple[str, list[str]]]:
    """``[(flag, values), ...]``: every ``--flag`` with the arguments up to the next one (``--x=1`` split)."""
    groups: list[tuple[str, list[str]]] = []
    for argument in arguments:
        if argument.startswith("--"):
            flag, _, value = argument.partition("=")
            groups.append((flag, [value] if value else []))
        elif groups:
            groups[-1][1].append(argument)
        else:
            raise UnmappedArgument(f"{argument!r} is not after an option")
    return groups


def translate(arguments: list[str]) -> tuple[list[str], list[str]]:
    """(``flip-reward train`` arguments, ``grpo_fast -> train`` notes); UnmappedArgument for the first argument
    that is grpo_fast.py's (underscores) and has no equivalent. Dashed arguments are already train's."""
    translated, notes = [], []
    for flag, values in split_flags(arguments):
        if "_" not in flag:
            translated += [flag, *values]
            continue
        if flag in SWITCHES and not values:
            translated += SWITCHES[flag]
            notes.append(f"{flag} -> {' '.join(SWITCHES[flag])}")
            continue
        if flag not in EQUIVALENTS:
            raise UnmappedArgument(flag)
        target = EQUIVALENTS[flag]
        values = [" ".join(values)] if target in JOINED else values
        translated += [target, *values]
        notes.append(f"{flag} -> {target}")
    return translated, notes
