"""What the generated image runs: the pre-plan Dockerfile's ENTRYPOINT and CMD (or else the
package's console script) as exec-form argv that the distroless runtime's python3 runs,
listening on stack.toml's port, and the modules the runtime imports at build time so that a
missing one fails the build. A command that needs a shell, or runs a file of the old image
that Python cannot, is refused."""

from __future__ import annotations

import ast
import posixpath
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ...deps.model import PythonPackage
from .model import ImagePlanning
from .parse import Instruction
from .preplan import PrePlan
from .shell import exec_words, shell_feature

_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})
_INIT_WRAPPERS = frozenset({"tini", "tini-static", "dumb-init"})


def runtime_command(plan: ImagePlanning) -> tuple[list[str], list[str], str]:
    """(ENTRYPOINT, CMD, where it came from), both exec form, run by the runtime's python3."""
    if plan.preplan is not None and (plan.preplan.entrypoint or plan.preplan.cmd):
        return _old_command(plan, plan.preplan)
    return _script_command(plan)


def _old_command(plan: ImagePlanning, preplan: PrePlan) -> tuple[list[str], list[str], str]:
    entrypoint = _argv(plan, preplan.entrypoint) if preplan.entrypoint else []
    cmd_instruction = preplan.cmd
    if preplan.entrypoint is not None and preplan.entrypoint.exec_form is None:
        cmd_instruction = None  # a shell-form ENTRYPOINT ignores CMD
    cmd = _argv(plan, cmd_instruction) if cmd_instruction else []
    used = [i for i in (preplan.entrypoint, cmd_instruction) if i is not None]
    where = " and ".join(f"{i.keyword} ({preplan.dockerfile.where(i)})" for i in used)
    argv, stripped = _without_init([*entrypoint, *cmd])
    if not argv:
        raise plan.refuse(f"{where} runs nothing the runtime could start")
    # Where ENTRYPOINT ends and CMD begins, if the old image had both (CMD stays overridable).
    split = len(entrypoint) - stripped if entrypoint and cmd and len(entrypoint) > stripped else 0
    converted, how = _python_command(plan, argv, preplan.dockerfile.where(used[0]))
    converted = _served_app(plan, converted)
    converted = _with_stack_port(plan, converted)
    if split:
        split += len(converted) - len(argv)
    source = f"{where}{how}"
    plan.notes.append(f"command from {source}")
    return (converted[:split], converted[split:], source) if split else (converted, [], source)


def _argv(plan: ImagePlanning, instruction: Instruction) -> list[str]:
    where = f"the {instruction.keyword} in {plan.preplan.dockerfile.where(instruction)}"  # type: ignore[union-attr]
    argv = instruction.exec_form
    if argv is None:
        feature = shell_feature(instruction.arguments)
        if feature is not None:
            raise plan.refuse(
                f"{where} needs a shell (`{feature}`), which the distroless runtime does not have: "
                f"write it in exec form without shell features, e.g. {instruction.keyword} "
                '["uvicorn", "app.main:app", "--port", "8000"], then run this again'
            )
        argv = exec_words(instruction.arguments) if instruction.arguments.strip() else []
    if argv and (posixpath.basename(argv[0]) in _SHELLS or argv[0].endswith(".sh")):
        shown = " ".join(argv[:3]) + (" …" if len(argv) > 3 else "")
        raise plan.refuse(
            f"{where} runs `{shown}`, a shell, which the distroless runtime does not have: run the "
            "server directly in exec form (its settings as ENV), then run this again"
        )
    return list(argv)


def _python_command(plan: ImagePlanning, argv: list[str], where: str) -> tuple[list[str], str]:
    """The command as something the runtime's python3 runs: (the new argv, how)."""
    program, rest = argv[0], argv[1:]
    name = posixpath.basename(program)
    if _is_python(name):
        return ["python3", *(_app_path(plan, a) if a.endswith(".py") else a for a in rest)], ""
    if name.endswith(".py"):
        return ["python3", _app_path(plan, program), *rest], f": {program} run by python3"
    if "/" in program and posixpath.basename(posixpath.dirname(program)) != "bin":
        raise plan.refuse(
            f"{where} runs {program}, a file of the old image that the runtime (Python only) cannot "
            "run: give the command as a Python module or console script, then run this again"
        )
    if name in plan.facts.scripts:
        target = plan.facts.scripts[name]
        return [*_script_call(target), *rest], f": console script {name} = {target}"
    modules = plan.inputs.settings.script_modules
    if name in modules:
        return ["python3", "-m", modules[name], *rest], f": {name} becomes python3 -m {modules[name]}"
    guess = name.replace("-", "_")
    plan.notes.append(
        f"{where} runs {name}: assumed it runs as `python3 -m {guess}` (set "
        f"sutra.dockerfiles.script_modules.{name} if it does not)"
    )
    return ["python3", "-m", guess, *rest], f": {name} assumed to be python3 -m {guess}"


def _script_command(plan: ImagePlanning) -> tuple[list[str], list[str], str]:
    scripts = plan.facts.scripts
    chosen = None
    if len(scripts) == 1:
        chosen = next(iter(scripts))
    else:
        for name in (plan.facts.pkg.distribution, plan.service.name):
            if name in scripts:
                chosen = name
                break
    if chosen is None:
        old = (
            f"{plan.preplan.path} has no CMD or ENTRYPOINT"
            if plan.preplan
            else "there is no pre-plan Dockerfile"
        )
        found = (
            f"its console scripts ({', '.join(sorted(scripts))}) do not say which runs the service"
            if scripts
            else f"{plan.facts.pkg.rel} declares no console script"
        )
        raise plan.refuse(
            f"no command to run: {old} and {found}; add a CMD to the old Dockerfile or a "
            "[project.scripts] entry named like the package"
        )
    source = f"console script {chosen} = {scripts[chosen]} ({plan.facts.pkg.rel})"
    plan.notes.append(f"command from {source}")
    return _script_call(scripts[chosen]), [], source


def _served_app(plan: ImagePlanning, argv: list[str]) -> list[str]:
    """`python3 -m pkg.main` whose `__main__` block runs `uvicorn.run(app, port=…)`: its port is
    the code's, not stack.toml's, and no flag reaches it. The image serves the same app with
    uvicorn's own command line instead, on stack.toml's port (set below), and its build-time
    import check imports the module that holds the app."""
    if len(argv) != 3 or argv[:2] != ["python3", "-m"]:
        return argv
    module = argv[2]
    path = plan.facts.module_file(module)
    if path is None:
        return argv
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return argv
    for block in (n for n in tree.body if isinstance(n, ast.If) and _is_main_guard(n.test)):
        for call in (n for n in ast.walk(block) if isinstance(n, ast.Call)):
            func = call.func
            runs_uvicorn = (
                isinstance(func, ast.Attribute) and func.attr == "run" and _name_of(func.value) == "uvicorn"
            )
            if not runs_uvicorn or not call.args:
                continue
            target = call.args[0]
            if isinstance(target, ast.Name):
                app = f"{module}:{target.id}"
            elif isinstance(target, ast.Constant) and isinstance(target.value, str) and ":" in target.value:
                app = target.value
            else:
                continue
            port = next((k.value for k in call.keywords if k.arg == "port"), None)
            said = f" on port {port.value}" if isinstance(port, ast.Constant) else ""
            root = plan.inputs.root.resolve()
            rel = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else path
            plan.notes.append(
                f"python3 -m {module} starts uvicorn{said} in its __main__ block ({rel}:{call.lineno}): "
                f"the image runs `python3 -m uvicorn {app}` on stack.toml's port instead"
            )
            port_text = str(plan.service.port.container)
            return ["python3", "-m", "uvicorn", app, "--host", "0.0.0.0", "--port", port_text]
    return argv


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _name_of(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else ""


def _with_stack_port(plan: ImagePlanning, argv: list[str]) -> list[str]:
    """`--port N`, `--bind host:N`: the server listens where stack.toml says."""
    port = str(plan.service.port.container)
    out = list(argv)
    for index, word in enumerate(out):
        option, sep, value = word.partition("=")
        if option not in ("--port", "--bind", "-b"):
            continue
        position = index if sep else index + 1
        if position >= len(out):
            continue
        current = value if sep else out[position]
        host, colon, number = current.rpartition(":") if option != "--port" else ("", "", current)
        if number.isdigit() and number != port:
            replaced = f"{host}{colon}{port}"
            out[position] = f"{option}={replaced}" if sep else replaced
            plan.notes.append(
                f"the command's {option} {current} disagrees with stack.toml's port {port}: uses {port}"
            )
        if host in ("127.0.0.1", "localhost"):
            plan.notes.append(f"the command binds {host}: other containers cannot reach it")
    for index, word in enumerate(out[:-1]):
        if word == "--host" and out[index + 1] in ("127.0.0.1", "localhost"):
            plan.notes.append(f"the command binds {out[index + 1]}: other containers cannot reach it")
    return out


def _app_path(plan: ImagePlanning, program: str) -> str:
    workdir = plan.preplan.workdir if plan.preplan else "/"
    if program.startswith("/") and (program + "/").startswith(workdir.rstrip("/") + "/"):
        return posixpath.relpath(program, workdir)
    return program


def check_server(
    plan: ImagePlanning, argv: list[str], requirements: list[Requirement], local: set[str]
) -> None:
    """`python3 -m uvicorn` needs uvicorn: say so when the metadata does not declare it."""
    if len(argv) < 3 or argv[:2] != ["python3", "-m"]:
        return
    top = argv[2].split(".")[0]
    if top in sys.stdlib_module_names or top in plan.facts.pkg.modules:
        return
    declared = {canonicalize_name(r.name) for r in requirements} | local
    if canonicalize_name(top) not in declared:
        plan.notes.append(
            f"warning: the command runs python3 -m {argv[2]}, but {plan.facts.declared_in} does not "
            f"declare {top}: the image's import check fails unless a dependency brings it in; declare it"
        )


def smoke_imports(
    plan: ImagePlanning, argv: list[str], local: list[tuple[PythonPackage, Requirement, str]]
) -> list[str]:
    """Modules the runtime image imports while it is built, so that a missing one fails the
    build, not the rollout; never a module that would start the server on import."""
    own = set(plan.facts.pkg.modules) | {m for pkg, _, _ in local for m in pkg.modules}
    found: list[str] = []
    if len(argv) > 2 and argv[0] == "python3" and argv[1] == "-m":
        module = argv[2]
        top = module.split(".")[0]
        if top not in own:
            found.append(module)
        elif "." in module:
            found.append(module.rsplit(".", 1)[0])
        elif plan.facts.module_is_package(module):
            found.append(module)
        targets = argv[3:]
    elif len(argv) > 2 and argv[0] == "python3" and argv[1] == "-c":
        targets = []
        statement = argv[2].split("; from ", 1)
        if len(statement) == 2:
            found.append(statement[1].split(" import ", 1)[0])
    else:
        targets = []
    for word in targets:  # an ASGI or WSGI app: `package.module:app`
        module, sep, attribute = word.partition(":")
        if sep and _dotted(module) and _dotted(attribute.removesuffix("()")) and module.split(".")[0] in own:
            found.append(module)
    return list(dict.fromkeys(found))


def _script_call(target: str) -> list[str]:
    """`module:function` as the console script's wrapper runs it."""
    module, _, attribute = target.partition(":")
    attribute = attribute.split("[")[0].strip()
    head = attribute.split(".")[0]
    return ["python3", "-c", f"import sys; from {module.strip()} import {head}; sys.exit({attribute}())"]


def _without_init(argv: list[str]) -> tuple[list[str], int]:
    """`tini -- cmd`, `dumb-init cmd`: the runtime has no init wrapper; Docker's --init is one."""
    if not argv or posixpath.basename(argv[0]) not in _INIT_WRAPPERS:
        return argv, 0
    rest = argv[1:]
    drop = (
        rest.index("--") + 1
        if "--" in rest
        else next((i for i, w in enumerate(rest) if not w.startswith("-")), len(rest))
    )
    return rest[drop:], 1 + drop


def _is_python(name: str) -> bool:
    """python, python3, python3.11."""
    version = name.removeprefix("python")
    return name.startswith("python") and (not version or version.replace(".", "").isdigit())


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))
