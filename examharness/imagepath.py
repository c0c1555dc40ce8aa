"""Which files a template's ``{{ image(path) }}`` may read: only inside the exam's folder or a
prompts folder on the template search path.

A template (a user's ``--prompts`` folder, an exam's own ``prompts/``) is less trusted than the
person running the exam: without this rule ``{{ image('/home/me/.ssh/id_rsa') }}`` would embed any
readable file in the request and send it to the model. The path is resolved (``..`` and symlinks
followed) before the check, so neither can step outside.
"""

from __future__ import annotations

from pathlib import Path


def confined_image(path: str, exam_dir: Path, prompt_dirs: list[Path]) -> Path:
    """The file ``path`` names (relative paths are relative to ``exam_dir``), if it lies inside
    ``exam_dir`` or one of ``prompt_dirs``; else :class:`SecurityError`, which the renderer
    reports at the template's ``FILE:LINE``."""
    from jinja2.exceptions import SecurityError  # called while a template renders: Jinja is loaded

    if not isinstance(path, str) or "\x00" in path:
        raise SecurityError(f"image path {path!r} is not a file name")
    target = (exam_dir / path).resolve()
    roots = [exam_dir, *prompt_dirs]
    if any(target.is_relative_to(root.resolve()) for root in roots):
        return target
    folders = ", ".join(str(root) for root in roots)
    message = f"image path {path!r} is outside the exam's folder and the prompts folders ({folders})"
    raise SecurityError(message)
