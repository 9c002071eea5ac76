"""Self-contained pipeline folders: a saved folder carries this package's pipelines as one module file.

`save_pretrained` of every pipeline here also writes `pipeline_sfd.py` into the folder and names it in
`model_index.json` as `["pipeline_sfd", "<class>"]`, diffusers' custom-pipeline convention. The folder then loads
where only torch, diffusers and transformers are installed:

    DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)

The module file is built from this package's own modules, in dependency order, with their relative imports removed
(stdlib `ast` finds them); inside that file, the file itself is the source it copies on the next save.
`python -m sfd.cli.self_contained FOLDER …` rewrites the file of folders saved before.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import tempfile
from pathlib import Path

MODULE_NAME = "pipeline_sfd"
MODULE_ORDER = (
    "standalone",
    "conditions",
    "networks",
    "inputs",
    "labels",
    "multistep",
    "denoiser",
    "prompt_encoding",
    "one_step",
    "class_conditional",
    "text_to_image",
)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _split_module(source: str) -> tuple[list[ast.stmt], str]:
    """(its absolute import statements, the module's code without its docstring and its imports)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    drop, imports = set(), []
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        if docstring or is_import:
            drop.update(range(node.lineno - 1, node.end_lineno))
        if is_import and not (isinstance(node, ast.ImportFrom) and (node.level or node.module == "__future__")):
            imports.append(node)
    body = "".join(line for k, line in enumerate(lines) if k not in drop)
    return imports, body.strip("\n")


PIPELINE_CLASSES = (
    "ClassConditionalDiffusionPipeline",
    "OneStepClassConditionalPipeline",
    "TextToImageDiffusionPipeline",
    "OneStepTextToImagePipeline",
)


def _package_source() -> str:
    """Every module of this package in dependency order, as one text with one block of imports."""
    here = Path(__file__).resolve().parent
    imports, bodies, defined = [], [], {}
    for name in MODULE_ORDER:
        module_imports, body = _split_module((here / f"{name}.py").read_text())
        imports += module_imports
        for node in ast.parse(body).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                if node.name in defined:
                    raise RuntimeError(f"{node.name} is defined in both {defined[node.name]}.py and {name}.py")
                defined[node.name] = name
        bodies.append(f"# ---- {name} ----\n\n\n{body}")
    return _import_block(imports) + "\n\n" + "\n\n\n".join(bodies) + "\n"


def _import_block(nodes: list[ast.stmt]) -> str:
    """One import statement per module, merged and sorted, standard library first (as isort / ruff order them)."""
    plain, named = set(), {}

    def spelled(alias: ast.alias) -> str:
        return alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"

    for node in nodes:
        if isinstance(node, ast.Import):
            plain.update(spelled(a) for a in node.names)
        else:
            named.setdefault(node.module, set()).update(spelled(a) for a in node.names)
    groups = {True: [], False: []}
    lines = [(m, f"import {m}") for m in sorted(plain)]
    lines += [(m, f"from {m} import {', '.join(sorted(named[m]))}") for m in sorted(named)]
    for module, line in lines:
        groups[module.split(".")[0] in sys.stdlib_module_names].append(line)
    return "\n".join(groups[True]) + "\n\n" + "\n".join(groups[False])


def _without_classes(source: str, names: set[str]) -> str:
    lines = source.splitlines(keepends=True)
    drop = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name in names:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            drop.update(range(first - 1, node.end_lineno))
    return "".join(line for k, line in enumerate(lines) if k not in drop)


def module_source(class_name: str) -> str:
    """The text of `pipeline_sfd.py` for a folder of `class_name`: this package's pipeline code with that one
    pipeline class (diffusers' `custom_pipeline=` loading wants exactly one), importing only torch, diffusers,
    transformers, numpy and PIL."""
    if class_name not in PIPELINE_CLASSES:
        raise ValueError(f"{class_name} is not a pipeline of this package; choose among {list(PIPELINE_CLASSES)}")
    if Path(__file__).stem != MODULE_NAME:  # the package's modules
        header = (
            f'"""{class_name} of sfd (Score Forgetting Distillation), as one file for diffusers: '
            "`DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`.\n\nBuilt by "
            "`pipelines/standalone.py` from the package's pipeline modules; it needs torch, diffusers and "
            'transformers, not sfd."""\n\nfrom __future__ import annotations\n\n'
        )
        source = header + _package_source()
    else:  # running as a single file already: it is its own source
        source = Path(__file__).read_text()
    present = {n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    if class_name not in present:
        raise ValueError(f"{Path(__file__).name} holds no {class_name}")
    return _tidy(_without_classes(source, set(PIPELINE_CLASSES) - {class_name}))


def _tidy(source: str) -> str:
    """Two blank lines between top-level blocks, and no section header left without code under it."""
    source = re.sub(r"\n{4,}", "\n\n\n", source)
    source = re.sub(r"# ---- \w+ ----\n\n\n(?=# ---- )", "", source)
    return source.rstrip("\n") + "\n"


def make_self_contained(folder: str | os.PathLike, class_name: str) -> None:
    """Write `pipeline_sfd.py` into a saved pipeline folder and point its `model_index.json` at `class_name` in it."""
    folder = Path(folder)
    _write_atomic(folder / f"{MODULE_NAME}.py", module_source(class_name))
    index = folder / "model_index.json"
    config = json.loads(index.read_text())
    config["_class_name"] = [MODULE_NAME, class_name]
    _write_atomic(index, json.dumps(config, indent=2, sort_keys=True) + "\n")


def refresh(folders) -> None:
    """Rewrite the module file of saved pipeline folders (e.g. after this package's pipelines changed)."""
    for folder in folders:
        name = json.loads((Path(folder) / "model_index.json").read_text())["_class_name"]
        make_self_contained(folder, name[-1] if isinstance(name, list) else name)
        print(f"{folder}: {MODULE_NAME}.py written")


class SelfContainedMixin:
    """`save_pretrained` that leaves a folder loadable without this package (`make_self_contained`), and
    `from_pretrained` of the class itself that does not need the folder's module file."""

    @classmethod
    def load_config(cls, *args, **kwargs):
        out = super().load_config(*args, **kwargs)
        config = out[0] if isinstance(out, tuple) else out
        name = config.get("_class_name")
        if isinstance(name, list) and name[0] == MODULE_NAME:  # this class is at hand: no remote code to run
            config["_class_name"] = name[1]
        return out

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        make_self_contained(save_directory, type(self).__name__)
        if push_to_hub:  # after the module file is in the folder, so the Hub copy is self-contained too
            from huggingface_hub import create_repo, upload_folder

            repo_id = kwargs.get("repo_id") or Path(save_directory).name
            token = kwargs.get("token")
            repo_id = create_repo(repo_id, exist_ok=True, private=kwargs.get("private"), token=token).repo_id
            upload_folder(
                repo_id=repo_id, folder_path=save_directory, token=token, commit_message=kwargs.get("commit_message")
            )
