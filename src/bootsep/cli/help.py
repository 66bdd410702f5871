"""Per-command help (``main.py COMMAND --help``), generated from the gin configurables.

Each command's page lists what it does, the CLI options that apply to it, and the gin
parameters it reads with their defaults, taken from the signatures of the registered
configurables (so the page never goes stale), plus two curated groups whose keys are checked
against the same signatures by the tests: the bindings that keep runs small and the caches.
"""

from __future__ import annotations

import inspect
import re
import textwrap

#: Configurables each command calls (gin names). Commands not listed fall back to a
#: configurable of their own name, if there is one.
COMMAND_CONFIGURABLES: dict[str, tuple[str, ...]] = {
    "instantiate": ("sweep",),
    "prepare": ("prepare", "generate_demo_dataset", "prepare_musdb"),
    "cache": ("cache", "AudioCache"),
    "train": ("train", "build_dataset"),
    "evaluate": ("evaluate", "deep_separator"),
    "analyze": ("analyze",),
    "all": ("train", "evaluate", "deep_separator", "analyze"),
    "resume": ("train", "evaluate", "deep_separator", "analyze"),
    "debug": ("debug", "deep_separator"),
    "separate": ("separate",),
    "organize": ("organize",),
}

#: Configurables that shape training, named (not expanded) on the train pages.
TRAINING_PARTS = ("StemFolderDataset", "Remixer", "STFT", "AutoClip", "ClipGradient",
                  "AutoBalanceLoss", "EarlyStopping", "LRScheduler", "Curriculum", "Chimera",
                  "DeepClustering", "MaskInference", "DualPathChimera", "OpenUnmix",
                  "MelMaskBLSTM", "ConditionalCentroids")

#: Bindings that keep a run small: (key, what it bounds).
SMALL_RUN_KEYS: tuple[tuple[str, str], ...] = (
    ("train.num_epochs", "epochs"),
    ("train.epoch_length", "steps per epoch (None: one pass over the training set)"),
    ("train.batch_size", "global batch"),
    ("train/StemFolderDataset.num_items", "training excerpts (None: one per song)"),
    ("train/StemFolderDataset.excerpt_seconds", "training excerpt length, s (None: whole songs)"),
    ("val/StemFolderDataset.num_items", "validation excerpts"),
    ("train/StemFolderDataset.songs", "songs used: a list of names or N (the first N)"),
    ("test/StemFolderDataset.songs", "test songs: a list of names or N (the first N)"),
    ("evaluate.max_items", "test items scored in this call"),
    ("debug.num_epochs", "epochs of the one-item overfit"),
    ("debug.epoch_length", "steps per debug epoch"),
)

#: Cache bindings: (key, what it does).
CACHE_KEYS: tuple[tuple[str, str], ...] = (
    ("StemFolderDataset.cache", "an AudioCache or a folder: decoded + resampled audio, reused"),
    ("AudioCache.folder", "where cached arrays live (e.g. @AudioCache() with this folder)"),
    ("cache.scopes", "which datasets `main.py cache` fills"),
)

SMALL_FOR = {"train", "evaluate", "all", "resume", "debug"}
CACHE_FOR = {"train", "evaluate", "all", "resume", "debug", "cache"}
#: Options every run command takes (the rest name their commands in their help text).
COMMON_OPTIONS = ("--config", "--output-folder", "--bind", "--verbose")


def _configurable(name: str):
    from gin import config

    from ..config import registry

    registry.register_all()
    return config._REGISTRY.get_match(name)  # noqa: SLF001 - gin has no public lookup


def parameters(name: str) -> list[tuple[str, object]]:
    """``[(param, default)]`` of the configurable registered as ``name`` (signature order);
    ``default`` is ``inspect.Parameter.empty`` or ``gin.REQUIRED`` for required ones.
    Raises KeyError for an unknown configurable."""
    c = _configurable(name)
    if c is None:
        raise KeyError(name)
    target = c.wrapped.__init__ if inspect.isclass(c.wrapped) else c.wrapped
    out = []
    for p in inspect.signature(target).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append((p.name, p.default))
    return out


def default_of(key: str):
    """Default of a binding key ``[scope/]Name.param``. Raises KeyError if it does not exist."""
    name, _, param = key.rsplit("/", 1)[-1].rpartition(".")
    for p, default in parameters(name):
        if p == param:
            return default
    raise KeyError(key)


def _fmt_default(value) -> str:
    import gin

    if value is inspect.Parameter.empty or value is gin.REQUIRED:
        return "<required>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _summary(name: str) -> str:
    c = _configurable(name)
    doc = inspect.getdoc(c.wrapped) or ""
    first = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0] if doc else ""
    return " ".join(first.split())


def _commands_named(help_text: str, commands) -> set[str] | None:
    """Commands an option's help is about: those named before the ``:`` of any of its
    ``;``-separated clauses (``separate/organize: ...``, ``separate (segment mode), evaluate:
    ...``, ``organize: ...; separate --input: ...``); None when it names none (a common option)."""
    named: set[str] = set()
    for clause in re.split(r";\s*", help_text or ""):
        m = re.match(r"([^:]{1,60}):\s", clause)
        words = re.findall(r"[a-z_]+", m.group(1)) if m else []
        if words and words[0] in commands:  # "run folder (for instantiate: ...)" names none
            named |= set(words) & set(commands)
    return named or None


def _options(parser, command: str, commands=()) -> list[str]:
    """Help lines of the parser's options that apply to ``command``: the common ones, and
    those whose help names it (:func:`_commands_named`)."""
    lines = []
    for action in parser._actions:  # noqa: SLF001 - argparse exposes no public list
        if not action.option_strings or action.help in (None, "==SUPPRESS=="):
            continue
        if action.dest == "help":
            continue
        named = _commands_named(action.help, set(commands) | {command})
        if named is not None:
            if command not in named:
                continue
        else:
            long = [o for o in action.option_strings if o.startswith("--")]
            if not set(long) & set(COMMON_OPTIONS):
                continue
        text = action.help or ""
        flags = ", ".join(action.option_strings)
        if action.nargs != 0:
            choices = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else None
            flags += f" {action.metavar or choices or action.dest.upper()}"
        if action.default not in (None, False, [], argparse_suppress()):
            text += f" (default: {action.default})"
        lines.append(_two_columns(flags, text))
    return lines


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def _two_columns(left: str, right: str, width: int = 34) -> str:
    wrapped = textwrap.wrap(right, 100 - width - 2) or [""]
    if len(left) > width - 2:
        head = [f"  {left}"] + [" " * width + w for w in wrapped]
    else:
        head = [f"  {left:<{width - 2}}{wrapped[0]}"] + [" " * width + w for w in wrapped[1:]]
    return "\n".join(head)


def command_help(command: str, parser, description: str, commands=()) -> str:
    """The help page of ``command`` (see the module docstring); ``commands``: every command
    name, to tell which options name which command."""
    names = COMMAND_CONFIGURABLES.get(command)
    if names is None:
        names = (command,) if _configurable(command) is not None else ()
    out = [f"usage: main.py {command} -c GIN [GIN ...] [-o RUN_FOLDER] [-b 'KEY = VALUE' ...]",
           "", description, ""]
    out += ["options:"] + _options(parser, command, commands or COMMAND_CONFIGURABLES) + [""]
    seen = set()
    for name in names:
        if _configurable(name) is None:
            continue
        out.append(f"gin parameters of {name} (-b '{name}.PARAM = VALUE'; default shown):")
        summary = _summary(name)
        if summary:
            out += ["  " + line for line in textwrap.wrap(summary, 96)]
        for param, default in parameters(name):
            if param.startswith("_"):
                continue
            key = f"{name}.{param}"
            seen.add(key)
            out.append(f"    {key} = {_fmt_default(default)}")
        out.append("")
    if command in SMALL_FOR:
        out.append("keeping runs small (KEY = default: what it bounds):")
        out += [_two_columns(f"{k} = {_fmt_default(default_of(k))}", why, 52)
                for k, why in SMALL_RUN_KEYS]
        out.append("")
    if command in CACHE_FOR:
        out.append("caches (KEY = default: what it does):")
        out += [_two_columns(f"{k} = {_fmt_default(default_of(k))}", why, 52)
                for k, why in CACHE_KEYS]
        out.append("")
    if command in ("train", "all", "resume", "debug"):
        parts = [p for p in TRAINING_PARTS if _configurable(p) is not None]
        out += ["also configured by their own bindings (NAME.PARAM), e.g. the model and handlers:",
                *("  " + line for line in textwrap.wrap(", ".join(parts), 96)), ""]
    out.append("Config files are parsed in order (later override earlier), then each -b line.")
    return "\n".join(out) + "\n"
