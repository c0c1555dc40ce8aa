"""Whether a run folder's ``grades.jsonl`` is still what grading its items would write.

``score`` grades every stored reply, then scores. Grading a 20,000-item run means reading its
``items.jsonl`` (hundreds of megabytes: the prompts sent) and extracting every answer again,
ten seconds and more, although the grades rarely change between two ``score`` commands: only
the scale, the edition or the bootstrap do. A :class:`~examharness.records.GradesStamp`, written
beside the grades, records everything the grades were made from; while it matches, ``score``
keeps the grades and reads no item record.

What grading depends on, and how each is recognised:

- the item records: ``items.jsonl``'s size, modification time and inode (a resumed run appends,
  ``merge`` and ``--resume`` rewrite it; either changes the stamp);
- the exams (answer keys, items planned): each exam file's SHA-256, the one
  :func:`~examharness.exam.load_exam` computes anyway, and a digest of ``run.json``;
- human grades: ``human_grades.jsonl``'s stamp;
- the code that grades: a fingerprint of its source (as :mod:`examharness.memo` keys its grades);
- the grades themselves: ``grades.jsonl``'s stamp as ``score`` wrote it, so a file changed by
  anything else is graded again rather than trusted.
"""

from __future__ import annotations

import hashlib

from examharness.exam import LoadedExam
from examharness.memo import GRADE_SOURCES, code_fingerprint
from examharness.records import GRADES_FILE, HUMAN_GRADES_FILE, ITEMS_FILE, RUN_FILE, FileStamp, GradesStamp
from examharness.results import RunFolder

STAMP_SOURCES = (*GRADE_SOURCES, "code/grade.py", "gradestamp.py")
"""The modules whose source the grades of a run depend on (answer extraction, code verdicts)."""
RACY_NS = 2_000_000_000
"""How long before the grades were written a file must have last changed for its stamp to be
trusted, on a file system that keeps whole seconds (some keep 2 s)."""
RACY_FINE_NS = 100_000_000
"""The same on a file system whose times have fractions of a second: they advance in ticks of at
most 10 ms (the kernel's coarse clock), so 100 ms is ample."""


def grading_fingerprint() -> str:
    return code_fingerprint(STAMP_SOURCES)


def current_stamp(folder: RunFolder, exams: dict[str, LoadedExam]) -> GradesStamp:
    """The stamp the folder's grades would carry if they were made now from these ``exams``."""
    return GradesStamp(
        code=grading_fingerprint(),
        run=hashlib.sha256(folder.file(RUN_FILE).read_bytes()).hexdigest(),
        exams={exam_id: loaded.content_hash for exam_id, loaded in sorted(exams.items())},
        items=folder.file_stamp(ITEMS_FILE), human=folder.file_stamp(HUMAN_GRADES_FILE),
        grades=folder.file_stamp(GRADES_FILE),
    )  # fmt: skip


def grades_current(folder: RunFolder, stamp: GradesStamp) -> bool:
    """Whether the stored grades were made from exactly what ``stamp`` (see :func:`current_stamp`)
    describes; a missing or unreadable stamp only means grading again.

    A file changed shortly before the grades were written is not trusted (as git treats a
    "racily clean" file): a file system keeps modification times in ticks (milliseconds to
    seconds), and an edit of the same size in the same tick would leave the stamp unchanged."""
    if stamp.grades is None or folder.read_grades_stamp() != stamp:
        return False
    written = stamp.grades.mtime_ns
    return all(f is None or written - f.mtime_ns > _window(f) for f in (stamp.items, stamp.human))


def _window(f: FileStamp) -> int:
    return RACY_NS if f.mtime_ns % 1_000_000_000 == 0 else RACY_FINE_NS


def stamp_grades(folder: RunFolder, stamp: GradesStamp) -> None:
    """Record, after ``grades.jsonl`` was written, what its grades were made from."""
    folder.write_grades_stamp(stamp.model_copy(update={"grades": folder.file_stamp(GRADES_FILE)}))
