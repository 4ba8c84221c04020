"""``flip-reward launch verl``: GRPO with FLIP rewards in verl (``python -m verl.trainer.main_ppo`` with
``flip_reward.integrations.verl.compute_score`` as its custom reward function): the settings (``VerlSettings``, also
the base of OpenRLHF's, which shares its presets), the data plan (DATASETS converted to verl's parquet schema in
this process, a validation set held out of training), the verl command, and the run (judge supervised, verl as a
process group, both stopped in order on every way out)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flip_reward.data.mixes import DatasetError, MixerEntry, parse_mixer, select_indices
from flip_reward.data.rlvr import to_verl, verl_schema, write_rows
from flip_reward.knobs import SettingsError, knob, resolve, resolve_knob
from flip_reward.launch.data_plan import HOLDOUT_SHARE, converted_rows, held_out_indices, is_local
from flip_reward.launch.run_judge import run_judge, url_in_environment
from flip_reward.launch.run_knobs import GrpoKnobs, RunKnobs, TrackingKnobs
from flip_reward.launch.trainer_run import Trainer, dry_run_report, flip_environment, gpu_env, run_trainer
from flip_reward.presets import checked_preset

VERIFIER = "general-flip"  # data_source of the converted rows
REWARD_KWARGS = "+reward.custom_reward_function.reward_kwargs"


@dataclass(frozen=True)
class VerlFamily(GrpoKnobs, RunKnobs):
    """The knobs of the launchers that read the verl presets (configs/verl_NAME.env): verl and OpenRLHF."""

    preset_origin: str
    preset: str = knob("PRESET", "1node", "configs/verl_NAME.env (1node, 1gpu) or a path to a .env file")
    vllm_tensor_parallel_size: int = knob("VLLM_TENSOR_PARALLEL_SIZE", 1, "tensor parallel size of vLLM", minimum=1)
    vllm_gpu_memory_utilization: float = knob("VLLM_GPU_MEMORY_UTILIZATION", 0.6, "vLLM's share of GPU memory")

    def __post_init__(self) -> None:
        self.check_judge()
        gpus = self.training_gpus()
        if not gpus:
            raise SettingsError(f"no GPU left for training (NUM_GPUS={self.num_gpus}, JUDGE_GPUS={self.judge_gpus})")

    @classmethod
    def from_sources(cls, flags: Mapping[str, object], environ: Mapping[str, str] | None = None) -> VerlFamily:
        """Every knob: ``flags`` > ``environ`` (default os.environ) > the preset (PRESET, default 1node) > default;
        SettingsError names a bad value's source, an unknown preset (with the choices) or a preset key that is no
        knob of this launcher."""
        environ = os.environ if environ is None else environ
        preset = checked_preset("verl", str(resolve_knob(cls, "preset", flags, environ)), cls)
        flags = {**flags, "preset": preset.name}
        return resolve(cls, flags, environ, preset.values, fixed={"preset_origin": preset.origin})


@dataclass(frozen=True)
class VerlSettings(TrackingKnobs, VerlFamily):
    """One ``flip-reward launch verl`` run, resolved once and checked in ``__post_init__``."""

    datasets: str = knob(
        "DATASETS",
        "yikeee/rlvr_general_chat_flip 1.0",
        "training data 'NAME AMOUNT [NAME AMOUNT ...]': hub datasets or local .jsonl/.json/.parquet files (chat or "
        "RLVR rows), converted to verl's parquet; AMOUNT as open-instruct reads it: a fraction (1.0: every row) or a "
        "row count (1: one row)",
    )
    exp_name: str = knob("EXP_NAME", "verl_grpo_flip", "run name")
    seed: int = knob("SEED", 1, "seed of verl's data shuffling (data.seed)")
    local_eval_count: int = knob(
        "LOCAL_EVAL_COUNT",
        16,
        f"validation rows held out of the first dataset (at most one row in {HOLDOUT_SHARE}, at least one)",
        minimum=1,
    )
    beta: float = knob("BETA", 0.0, "KL loss coefficient (0: no KL loss)", minimum=0)
    total_epochs: int = knob("TOTAL_EPOCHS", 1, "passes over the data", minimum=1)
    save_freq: int = knob("SAVE_FREQ", 50, "checkpoint every N steps (verl's trainer.save_freq)")
    test_freq: int = knob("TEST_FREQ", 25, "validate every N steps (verl's trainer.test_freq)")
    reward_workers: int = knob("REWARD_WORKERS", 8, "verl's reward loop workers (Ray actors)", minimum=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        per_step, training = self.prompts_per_step * self.samples_per_prompt, len(self.training_gpus())
        if per_step % training:
            raise SettingsError(
                f"PROMPTS_PER_STEP x SAMPLES_PER_PROMPT ({per_step}) must divide by the {training} training GPU(s)"
            )
        verl_datasets(self, Path("."))  # DATASETS and DATASET_SPLITS checked up front


# --- data ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerlDataset:
    """One DATASETS entry: the rows its amount selects (``data.mixes``: a fraction of the rows, or a row count, as
    open-instruct reads them) of split ``split``, converted to ``output`` (parquet)."""

    entry: MixerEntry
    split: str
    output: Path

    @property
    def source(self) -> str:
        return self.entry.source


def verl_datasets(settings: VerlSettings, data_dir: Path) -> list[VerlDataset]:
    """DATASETS as every launcher reads it (``parse_mixer``); SettingsError for a mix that is not one."""
    try:
        entries = parse_mixer(settings.datasets)
    except DatasetError as error:
        raise SettingsError(str(error)) from None
    return [
        VerlDataset(entry, split, data_dir / f"train_{index}.parquet")
        for index, (entry, split) in enumerate(zip(entries, settings.splits(len(entries))))
    ]


def verl_rows(source: str, split: str) -> list[dict]:
    """The rows of dataset ``source`` in verl's schema (``data_plan.converted_rows``)."""
    return converted_rows(source, split, lambda row, number: to_verl(row, number, VERIFIER))


@dataclass(frozen=True)
class VerlData:
    """The parquet files of a run: one per dataset, and the validation set held out of the first."""

    datasets: list[VerlDataset]
    validation: Path
    eval_count: int

    @property
    def train_files(self) -> list[Path]:
        return [dataset.output for dataset in self.datasets]


def verl_data(settings: VerlSettings) -> VerlData:
    data_dir = Path(settings.output_dir) / "data"
    return VerlData(verl_datasets(settings, data_dir), data_dir / "val.parquet", settings.local_eval_count)


def split_rows(data: VerlData, index: int, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(training rows, validation rows) of dataset ``index``: the first dataset's validation rows (a seeded sample,
    ``held_out_indices``) are held out of its training rows before its amount selects among them (``data.mixes``);
    others keep every row for the amount; DatasetError when the amount selects no row."""
    dataset = data.datasets[index]
    held = held_out_indices(len(rows), data.eval_count, dataset.source) if index == 0 else set()
    train = [row for number, row in enumerate(rows) if number not in held]
    target = dataset.entry.target(len(train))
    if target == 0:
        raise DatasetError(f"DATASETS: {dataset.source}: amount {dataset.entry.amount} of its {len(train)} training "
                           "rows selects no row")  # fmt: skip
    selected = [train[number] for number in select_indices(len(train), target)]
    return selected, [row for number, row in enumerate(rows) if number in held]


def data_lines(data: VerlData, write: bool) -> list[str]:
    """Convert every dataset (``write``: to its parquet file; else, a dry run, only checked) and say what each
    gives, the validation set in its own line; DatasetError for a dataset that cannot be used. A dry run reads
    local files only: a hub dataset is converted when the run starts."""
    lines = []
    for index, dataset in enumerate(data.datasets):
        if not write and not is_local(dataset.source):
            lines.append(f"data: {dataset.source}: Hugging Face dataset, not read by a dry run; converted at the start "
                         f"to {dataset.output} (amount {dataset.entry.amount})")  # fmt: skip
            if index == 0:
                lines.append(validation_line(data, f"up to {data.eval_count}"))
            continue
        rows = verl_rows(dataset.source, dataset.split)
        train, validation = split_rows(data, index, rows)
        if write:
            dataset.output.parent.mkdir(parents=True, exist_ok=True)
            write_rows(str(dataset.output), train, verl_schema())
        lines.append(f"data: {dataset.source}: {len(rows)} rows -> {len(train)} training rows -> {dataset.output}")
        if index == 0:
            if write:
                write_rows(str(data.validation), validation, verl_schema())
            lines.append(validation_line(data, str(len(validation))))
    return lines


def validation_line(data: VerlData, count: str) -> str:
    source = data.datasets[0].source
    return (
        f"validation: {count} rows of {source} held out of training (a seeded sample: LOCAL_EVAL_COUNT="
        f"{data.eval_count}, at most one row in {HOLDOUT_SHARE}) -> {data.validation}"
    )


# --- the trainer -----------------------------------------------------------------------------------------------


def judge_route(settings: VerlSettings, judge_url: str) -> tuple[list[str], dict[str, str]]:
    """How verl's reward workers learn the judge URL: in ``reward_kwargs`` (verl prints its config, overrides
    included), or, for a URL with credentials, in HOSTED_VLLM_API_BASE only (``url_in_environment``)."""
    env = url_in_environment(settings.judge_model, judge_url, "verl")
    return ([], env) if env else ([f"{REWARD_KWARGS}.api_base={judge_url}"], {})


def verl_overrides(settings: VerlSettings, data: VerlData, judge_kwargs: list[str], extra: Sequence[str]) -> list[str]:
    """verl's Hydra overrides for the run, ``extra`` (the user's) last so that they win."""
    s = settings
    train_files = ",".join(str(path) for path in data.train_files)
    return [
        "algorithm.adv_estimator=grpo", "algorithm.use_kl_in_reward=False",
        f"data.train_files=[{train_files}]", f"data.val_files=[{data.validation}]", "data.prompt_key=prompt",
        f"data.seed={s.seed}",
        f"data.train_batch_size={s.prompts_per_step}", f"data.max_prompt_length={s.max_prompt_length}",
        f"data.max_response_length={s.response_length}", "data.filter_overlong_prompts=True", "data.truncation=error",
        f"actor_rollout_ref.model.path={s.model_name_or_path}", f"actor_rollout_ref.actor.optim.lr={s.learning_rate}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={s.prompts_per_step}",
        f"actor_rollout_ref.actor.use_kl_loss={s.beta > 0}", f"actor_rollout_ref.actor.kl_loss_coef={s.beta}",
        "actor_rollout_ref.model.enable_gradient_checkpointing=True",
        "actor_rollout_ref.rollout.name=vllm", f"actor_rollout_ref.rollout.n={s.samples_per_prompt}",
        f"actor_rollout_ref.rollout.temperature={s.temperature}",
        f"actor_rollout_ref.rollout.tensor_model_parallel_size={s.vllm_tensor_parallel_size}",
        f"actor_rollout_ref.rollout.gpu_memory_utilization={s.vllm_gpu_memory_utilization}",
        "reward.custom_reward_function.path=pkg://flip_reward.integrations.verl",
        "reward.custom_reward_function.name=compute_score", f"reward.num_workers={s.reward_workers}",
        f"{REWARD_KWARGS}.judge_model={s.judge_model}", *judge_kwargs,
        f"{REWARD_KWARGS}.max_tokens={s.judge_max_tokens}", f"{REWARD_KWARGS}.max_context_length={s.judge_max_context}",
        f"{REWARD_KWARGS}.timeout={s.judge_timeout:g}", f"{REWARD_KWARGS}.temperature={s.judge_temperature}",
        f"trainer.n_gpus_per_node={len(s.training_gpus())}", "trainer.nnodes=1",
        f"trainer.total_epochs={s.total_epochs}", f"trainer.save_freq={s.save_freq}",
        f"trainer.test_freq={s.test_freq}", f"trainer.project_name={s.wandb_project}",
        f"trainer.experiment_name={s.exp_name}", f"trainer.default_local_dir={s.output_dir}/checkpoints",
        f"trainer.logger={'[console,wandb]' if s.with_tracking else '[console]'}",
        *extra,
    ]  # fmt: skip


def verl_trainer(
    settings: VerlSettings, data: VerlData, judge_url: str, python: str, extra: Sequence[str] = ()
) -> Trainer:
    """The verl command of the run (``python -m verl.trainer.main_ppo OVERRIDES``) and its environment."""
    judge_kwargs, judge_env = judge_route(settings, judge_url)
    command = [python, "-m", "verl.trainer.main_ppo", *verl_overrides(settings, data, judge_kwargs, extra)]
    return Trainer(command, {**gpu_env(settings), **judge_env})


# --- the launch ----------------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"verl_grpo: {message}", file=sys.stderr, flush=True)


def launch_verl(settings: VerlSettings, extra: Sequence[str], dry_run: bool) -> int:
    """Plan the run and print it (``dry_run``), or convert the data, start the judge and run verl."""
    flip_environment()
    python = sys.executable
    judge = run_judge(settings, Path(settings.output_dir) / "judge", python, dry_run)
    data = verl_data(settings)
    trainer = verl_trainer(settings, data, judge.url, python, extra)
    if dry_run:
        lines = data_lines(data, write=False)
        gpus = len(settings.training_gpus())
        headline = f"verl_grpo: preset {settings.preset} ({settings.preset_origin}); {gpus} training GPU(s); reward "
        headline += "flip_reward.integrations.verl"
        return dry_run_report(headline, judge, settings, lines, trainer)
    return run_trainer("verl", lambda: data_lines(data, write=True), judge, settings, trainer, log)
