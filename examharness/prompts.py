"""Turn an exam item into the chat messages sent to a model, through Jinja templates.

Templates live in ``prompts/*.j2`` and may be overridden by a user folder (searched first), then
by a ``prompts/`` folder beside the exam file. They render in an immutable *sandboxed* environment
with ``StrictUndefined`` and no HTML escaping: an exam or template cannot reach Python internals,
and a misspelt variable is an error, not an empty string.

A template's output is one user message unless the *template text itself* has role marker lines
``=== system ===``, ``=== user ===`` or ``=== assistant ===``, which start a new message. Roles come
from the template's structure only: every substituted value (``{{ ... }}``: exam text, a model's
reply handed to the grader) that could take part in a marker line is held aside while the template
renders and put back only after the text is split into messages, so a value containing
``=== system ===`` stays text in its message (the others cannot change the split: :func:`_hold`).
One environment factory (:func:`make_env`) renders item prompts, the grader prompt and the
second-stage answer request alike.
Images are placed with ``{{ image(path) }}`` (only files inside the exam's folder or a prompts
folder: :mod:`examharness.imagepath`): in a vision run the message becomes content parts
with the image embedded; in a text-only run the report's tag ``IMAGE: <non-meaningful name>``
stands in its place (GPT-4 report, Appendix A.4).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import mimetypes
import re
import secrets
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from examharness.backends.base import Message
from examharness.builtin import prompts_dir
from examharness.errors import InputError
from examharness.exam import LoadedExam, MCExemplar, Section, letters_for
from examharness.imagepath import confined_image

if TYPE_CHECKING:  # Jinja is imported when the first template is compiled: a rerun served whole
    # from the item memo renders nothing and so never pays for importing it.
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

BUILTIN_PROMPTS = prompts_dir()
ROLES = ("system", "user", "assistant")
ROLE_MARKER = re.compile(rf"^=== ({'|'.join(ROLES)}) ===[ \t]*$", re.MULTILINE)
MARKER_CHARS = "".join(sorted(set("= \t" + "".join(ROLES))))
"""Every character a role marker line can hold: a line with any other character is not one."""
IMAGE_TOKEN = re.compile(r"\x00image:(\d+)\x00")
PLACEHOLDER = re.compile("\ue000([0-9a-f]{16}):(\\d+)\ue001")
SLOTS = "__examharness_slots__"
"""The render-context key of the current render's :class:`_Slots`."""
ANSWER_STOP = "]"
"""Stop sequence of the second-stage answer request (``answer_followup.j2`` ends with "[")."""


class _Slots:
    """Substituted values of one render, replaced by placeholders that carry a random nonce (a
    value cannot forge one) until the template's own text has been split into messages."""

    _secret = secrets.token_hex(4)
    _serial = itertools.count()

    def __init__(self) -> None:
        # Unguessable (the secret part never leaves the process) and distinct per render, without
        # a system call per render.
        self.nonce = f"{self._secret}{next(self._serial) & 0xFFFFFFFF:08x}"
        self.values: list[str] = []

    def hold(self, value: str) -> str:
        self.values.append(value)
        return f"\ue000{self.nonce}:{len(self.values) - 1}\ue001"

    def restore(self, text: str) -> str:
        """Put the values back; a macro's output holds its own placeholders, hence the loop."""

        def value(m: re.Match[str]) -> str:
            return self.values[int(m[2])] if m[1] == self.nonce else m[0]

        for _ in range(len(self.values) + 1):
            if "\ue000" not in text:  # no placeholder left (the check a further pass would make)
                break
            restored = PLACEHOLDER.sub(value, text)
            if restored == text:
                break
            text = restored
        return text


def _hold(context: jinja2.runtime.Context, value: object) -> object:
    """Jinja's ``finalize`` (``pass_context``): each substituted value that could take part in a
    role marker line, held by the render's slots.

    A value without a line break that has a character no marker line holds (:data:`MARKER_CHARS`)
    is written as it is: the line it lands on cannot be a marker line with it, nor could it with
    the placeholder (whose delimiters are not marker characters either), and it starts or ends no
    line, so the split is the same. Held: any value with a line break, and any value made only of
    marker characters, the empty one included (``=== {{ role }} ===`` must stay text), and every
    value in an environment that compiled a ``{% filter %}`` block (the filter would see the
    written-out value after this check: :mod:`examharness.promptenv`)."""
    text = str(value)
    written_out = "\n" not in text and text.strip(MARKER_CHARS)
    if written_out and not getattr(context.environment, "filter_blocks", True):
        return text
    slots = context.get(SLOTS)
    return slots.hold(text) if isinstance(slots, _Slots) else text


def template_dirs(exam_path: Path | None, user_dir: Path | None) -> list[Path]:
    """Search order: the user's folder, the exam's own ``prompts/``, the built-in templates."""
    dirs = [user_dir] if user_dir else []
    if exam_path is not None:
        dirs.append(exam_path.parent / "prompts")
    dirs.append(BUILTIN_PROMPTS)
    return [d for d in dirs if d.is_dir()]


def make_env(dirs: list[Path]) -> ImmutableSandboxedEnvironment:
    """The one template environment: sandboxed, immutable, ``StrictUndefined``, no autoescape
    (prompts are plain text), ``{{ value }}`` kept out of role splitting (:func:`_hold`)."""
    import jinja2

    from examharness.promptenv import PromptEnvironment

    return PromptEnvironment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=jinja2.pass_context(_hold),
        auto_reload=False,  # a run's templates do not change under it: no stat per render
    )


def image_tag(path: str) -> str:
    """The report's text-only stand-in: a filename that says nothing about the content."""
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    return f"IMAGE: img_{digest}{Path(path).suffix or '.png'}"


def _template_error(name: str, dirs: list[Path], err: Exception, tb: TracebackType | None) -> InputError:
    """Map a Jinja error to ``TEMPLATE:LINE: template: message`` using Jinja's rewritten frames."""
    import jinja2
    from jinja2.exceptions import SecurityError

    file, line = name, None
    if isinstance(err, jinja2.TemplateSyntaxError):
        file, line = err.filename or name, err.lineno
    else:
        while tb is not None:
            fname = tb.tb_frame.f_code.co_filename
            if fname.endswith(".j2"):
                file, line = fname, tb.tb_lineno
            tb = tb.tb_next
    if file == name:
        found = next((d / f"{name}.j2" for d in dirs if (d / f"{name}.j2").exists()), None)
        file = str(found) if found else name
    kind = "unsafe template" if isinstance(err, SecurityError) else "template error"
    return InputError.one(file, line, "template", f"{kind}: {err}")


def _split_messages(text: str, slots: _Slots) -> list[Message]:
    """Split the template's own text at role markers, then put the substituted values back."""
    parts = ROLE_MARKER.split(text) if "=== " in text else [text]  # the scan tries every line
    bodies = [("user", parts[0]), *zip(parts[1::2], parts[2::2], strict=True)]
    messages = [{"role": role, "content": slots.restore(body).strip()} for role, body in bodies]
    return [m for i, m in enumerate(messages) if i > 0 or m["content"] or len(messages) == 1]


def _embed_images(messages: list[Message], images: list[Path]) -> list[Message]:
    out = []
    for msg in messages:
        text: str = msg["content"]
        if not IMAGE_TOKEN.search(text):
            out.append(msg)
            continue
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(IMAGE_TOKEN.split(text)):
            if i % 2 == 0:
                if chunk.strip():
                    parts.append({"type": "text", "text": chunk})
                continue
            path = images[int(chunk)]
            mime = mimetypes.guess_type(path.name)[0] or "image/png"
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}})
        out.append({"role": msg["role"], "content": parts})
    return out


def _options(options: list[str]) -> list[dict[str, str]]:
    return [
        {"letter": letter, "text": text} for letter, text in zip(letters_for(options), options, strict=True)
    ]


def section_context(loaded: LoadedExam, section: Section) -> dict[str, Any]:
    """Variables shared by every item of a section (computed once per section by :class:`Renderer`;
    the immutable sandbox guarantees a template cannot change them between items)."""
    exam = loaded.exam
    exemplars = []
    for ex in section.exemplars:
        ex_data = ex.model_dump()
        if isinstance(ex, MCExemplar):
            ex_data["options"] = _options(ex.options)
            ex_passage = exam.passages.get(ex.passage) if ex.passage else None
            ex_data["passage"] = ex_passage.text if ex_passage else None
        exemplars.append(ex_data)
    return {
        "exam": exam.model_dump(include={"id", "title", "language", "edition"}),
        "section": section.model_dump(include={"id", "title", "kind", "instruction"}),
        "exemplars": exemplars,
        "number": len(exemplars) + 1,
        "instruction": section.instruction,
    }


def item_context(
    loaded: LoadedExam, section: Section, item_index: int, shared: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Variables a template sees. Plain data only: no answers of the item itself."""
    item = section.items[item_index]
    data = item.model_dump(exclude={"answer", "explanation", "reference", "tolerance", "tests"})
    passage = loaded.exam.passages[item.passage] if item.passage else None
    if "options" in data:
        data["options"] = _options(data["options"])
    context = dict(shared if shared is not None else section_context(loaded, section))
    context["item"] = data
    context["passage"] = passage.model_dump() if passage else None
    return context


class Renderer:
    """Renders items with one compiled environment per template search path (Jinja caches
    compiled templates per environment, so a 2,000-item run compiles each template once)."""

    def __init__(self, *, vision: bool, user_dir: Path | None = None) -> None:
        self.vision = vision
        self.user_dir = user_dir
        self._envs: dict[tuple[Path, ...], ImmutableSandboxedEnvironment] = {}
        self._by_exam: dict[Path | None, tuple[list[Path], ImmutableSandboxedEnvironment]] = {}
        self._sections: dict[tuple[Path, str], dict[str, Any]] = {}

    def dirs_for(self, exam_path: Path | None) -> list[Path]:
        """The template search path for an exam file, without compiling anything."""
        if exam_path in self._by_exam:
            return self._by_exam[exam_path][0]
        return template_dirs(exam_path, self.user_dir)

    def env_for(self, exam_path: Path | None) -> tuple[list[Path], ImmutableSandboxedEnvironment]:
        """Looked up once per exam file: the search path costs a few ``stat`` calls."""
        if exam_path not in self._by_exam:
            dirs = template_dirs(exam_path, self.user_dir)
            key = tuple(dirs)
            if key not in self._envs:
                self._envs[key] = make_env(dirs)
            self._by_exam[exam_path] = (dirs, self._envs[key])
        return self._by_exam[exam_path]

    def render_named(self, name: str, context: dict[str, Any]) -> list[Message]:
        """A template not tied to an exam (the grader prompt, the answer request)."""
        dirs, env = self.env_for(None)
        return render_messages(name, dirs, context, env)

    def render(self, loaded: LoadedExam, section: Section, item_index: int) -> list[Message]:
        dirs, env = self.env_for(loaded.path)
        key = (loaded.path, section.id)
        if key not in self._sections:
            self._sections[key] = section_context(loaded, section)
        shared = self._sections[key]
        return render_item(loaded, section, item_index, vision=self.vision, dirs=dirs, env=env, shared=shared)


def render_item(
    loaded: LoadedExam,
    section: Section,
    item_index: int,
    *,
    vision: bool,
    dirs: list[Path],
    env: ImmutableSandboxedEnvironment,
    shared: dict[str, Any] | None = None,
) -> list[Message]:
    """The chat messages for one item, exactly as they will be sent."""
    name = section.template_name
    images: list[Path] = []

    def image(path: str) -> str:
        file = confined_image(path, loaded.path.parent, dirs)
        if not vision:
            return image_tag(path)
        images.append(file)
        return f"\x00image:{len(images) - 1}\x00"

    context = item_context(loaded, section, item_index, shared)
    context["image"] = image
    messages = render_messages(name, dirs, context, env)
    return _embed_images(messages, images) if vision else messages


def render_messages(
    name: str, dirs: list[Path], context: dict[str, Any], env: ImmutableSandboxedEnvironment
) -> list[Message]:
    """Render template ``name`` into chat messages; roles come from the template's own text."""
    slots = _Slots()
    text = render_template(name, dirs, {**context, SLOTS: slots}, env)
    return _split_messages(text, slots)


def render_template(
    name: str, dirs: list[Path], context: dict[str, Any], env: ImmutableSandboxedEnvironment
) -> str:
    import jinja2  # loaded by make_env already: a lookup, not an import
    from jinja2.exceptions import SecurityError

    try:
        return env.get_template(f"{name}.j2").render(context)
    except jinja2.TemplateNotFound:
        where = ", ".join(str(d) for d in dirs)
        raise InputError.one(f"{name}.j2", None, "template", f"template not found in {where}") from None
    except (jinja2.TemplateError, SecurityError, TypeError, AttributeError) as err:
        raise _template_error(name, dirs, err, sys.exc_info()[2]) from None


def template_hash(name: str, dirs: list[Path]) -> str:
    """Hash of the template source actually used, so comparisons can tell prompts changed."""
    for d in dirs:
        path = d / f"{name}.j2"
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return "missing"


def answer_followup(explanation: str, *, numeric: bool = False, renderer: Renderer | None = None
                    ) -> list[Message]:  # fmt: skip
    """Second stage of the report's method: given the sampled explanation, ask for the answer
    (``answer_followup.j2``; its reply is cut at :data:`ANSWER_STOP`)."""
    renderer = renderer or Renderer(vision=False)
    return renderer.render_named("answer_followup", {"explanation": explanation, "numeric": numeric})
