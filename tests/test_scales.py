"""Scale files load, and bad ones fail with FILE:LINE: field: message (scales.py, yamlpos.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from examharness.errors import InputError
from examharness.scales import (
    CompositeCutsConversion,
    PercentileDistribution,
    Scale,
    TableConversion,
    list_scales,
    load_scale,
)
from examharness.yamlpos import load_yaml_with_lines

SCALES = Path(__file__).parents[1] / "exams" / "scales"

HEADER = """\
id: tiny
title: Tiny
source: made up for a test
"""


def write(tmp_path: Path, body: str, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEADER.replace("tiny", name) + textwrap.dedent(body))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_scale(path, [])
    return [str(p) for p in info.value.problems]


def test_every_scale_file_loads() -> None:
    names = list_scales(SCALES)
    assert len(names) >= 14
    for name in names:
        scale = load_scale(name, [SCALES])
        assert scale.id == name
        assert scale.source
        assert (SCALES / f"{name}.yaml").read_text().startswith("#"), "must open with its citation"


@pytest.mark.parametrize(
    ("name", "kind", "percentile_kind"),
    [
        ("sat_math", "table", "table"),
        ("sat_ebrw", "section_tables", "table"),
        ("gre_verbal", "linear", "table"),
        ("gre_quantitative", "linear", "table"),
        ("gre_writing", "mean_points", "table"),
        ("lsat", "table", "table"),
        ("ap_biology", "composite_cuts", "distribution"),
        ("ap_us_history", "composite_cuts", "distribution"),
        ("amc", "linear", None),
    ],
)
def test_scale_kinds(name: str, kind: str, percentile_kind: str | None) -> None:
    scale = load_scale(name, [SCALES])
    assert scale.raw_to_scaled.kind == kind
    assert (scale.percentile.kind if scale.percentile else None) == percentile_kind


def test_conventions_and_ranges_copied() -> None:
    sat = load_scale("sat_math", [SCALES])
    assert sat.percentile is not None and sat.percentile.kind == "table"
    assert sat.percentile.convention == "at_or_below"
    gre = load_scale("gre_verbal", [SCALES])
    assert gre.percentile is not None and gre.percentile.kind == "table"
    assert gre.percentile.convention == "below"
    lsat = load_scale("lsat", [SCALES]).raw_to_scaled
    assert isinstance(lsat, TableConversion)
    assert lsat.form_max_raw == 99
    assert [lsat.lookup(r) for r in (0, 13, 14, 98, 99)] == [120, 120, 121, 180, 180]
    bio = load_scale("ap_biology", [SCALES])
    assert isinstance(bio.raw_to_scaled, CompositeCutsConversion)
    assert isinstance(bio.percentile, PercentileDistribution)
    assert bio.percentile.distributions[0].year == 2023


def test_non_monotonic_table_points_at_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        raw_to_scaled:
          kind: table
          form_max_raw: 3
          rows:
            - [0, 10]
            - [1, 12]
            - [2, 11]
            - [3, 14]
        """)
    assert problems_of(path) == [
        f"{path}:10: raw_to_scaled.rows.2: table is not monotonic at raw 2"
    ]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("[[0, 10], [1, 11], [1, 12], [2, 13]]", "raw_to_scaled.rows.2: raw 1 is listed twice"),
        ("[[0, 10], [2, 13]]", "raw_to_scaled.rows: raw 1 has no row"),
        ("[[[0, 1], 10], [[1, 2], 13]]", "raw_to_scaled.rows.1: raw 1 is listed twice"),
        ("[[[0, 5], 10]]", "raw_to_scaled.rows.0: raw 0-5 is outside 0..2"),
    ],
)
def test_table_row_problems(tmp_path: Path, rows: str, expected: str) -> None:
    path = write(tmp_path, f"""\
        raw_to_scaled:
          kind: table
          form_max_raw: 2
          rows: {rows}
        """)
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:7: {expected}")


def test_ranges_expand(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        raw_to_scaled: {kind: table, form_max_raw: 4, rows: [[[0, 2], 120], [3, 121], [4, 125]]}
        """)
    conv = load_scale(path, []).raw_to_scaled
    assert isinstance(conv, TableConversion)
    assert [conv.lookup(r) for r in range(5)] == [120, 120, 120, 121, 125]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("raw_to_scaled:\n  kind: table\n  rows: [[0, 1]]\n",
         ":4: raw_to_scaled.form_max_raw: Field required"),
        ("raw_to_scaled:\n  kind: curve\n",
         ":4: raw_to_scaled: Input tag 'curve' found using 'kind' does not match"),
        ("raw_to_scaled: {kind: mean_points, item_max: 6, round_to: 0.5}\ncolour: red\n",
         ":5: colour: Extra inputs are not permitted"),
        ("raw_to_scaled: {kind: linear, intercept: 0, slope: 1, round_to: 1, min: 5, max: 1}\n",
         ":4: raw_to_scaled.min: min 5.0 is above max 1.0"),
        ("raw_to_scaled:\n  kind: composite_cuts\n  section_multipliers: {mc: 1}\n"
         "  form_section_max: {mc: 10}\n  cuts:\n    - {score: 1, min_composite: 0}\n"
         "    - {score: 2, above: 5, min_composite: 5}\n",
         ":10: raw_to_scaled.cuts.1: give exactly one of min_composite or above"),
        ("raw_to_scaled:\n  kind: composite_cuts\n  section_multipliers: {mc: 1}\n"
         "  form_section_max: {mc: 10}\n  cuts:\n    - {score: 1, min_composite: 4}\n"
         "    - {score: 2, above: 3}\n",
         ":10: raw_to_scaled.cuts.1: cut for score 2 is below the cut for 1"),
        ("raw_to_scaled: {kind: mean_points, item_max: 6, round_to: 0.5}\npercentile:\n"
         "  kind: table\n  convention: below\n  source: x\n  rows:\n    - [1, 10]\n    - [2, 5]\n",
         ":11: percentile.rows.1: percent falls as score rises at score 2"),
        ("raw_to_scaled: {kind: mean_points, item_max: 6, round_to: 0.5}\npercentile:\n"
         "  kind: distribution\n  distributions:\n    - label: x\n      year: 2020\n"
         "      source: y\n      shares: [[1, 50], [2, 40]]\n",
         ":11: percentile.distributions.0.shares: shares add up to 90, not 100"),
    ],
)
def test_validation_problems_have_lines(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(HEADER + body)
    problems = problems_of(path)
    assert any(p.startswith(f"{path}{expected}") for p in problems), problems


def test_broken_yaml_is_one_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(HEADER + "raw_to_scaled:\n  kind: [table\n  rows: 3\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:6: (file): invalid YAML")


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(HEADER + "title: Again\n")
    assert problems_of(path) == [f"{path}:4: title: duplicate key"]


def test_id_must_match_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "raw_to_scaled: {kind: mean_points, item_max: 6, round_to: 0.5}\n")
    renamed = path.rename(tmp_path / "other.yaml")
    assert problems_of(renamed) == [f"{renamed}:1: id: 'tiny' differs from the file name 'other'"]


def test_unknown_name_and_search_order(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no scale named 'nope'"):
        load_scale("nope", [tmp_path, SCALES])
    write(tmp_path, "raw_to_scaled: {kind: mean_points, item_max: 4, round_to: 1}\n", "gre_writing")
    assert load_scale("gre_writing", [tmp_path, SCALES]).raw_to_scaled.kind == "mean_points"
    assert load_scale("gre_writing", [tmp_path, SCALES]).percentile is None


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text("- just\n- a list\n")
    assert problems_of(path) == [f"{path}:1: (file): a scale file must be a YAML mapping"]


def test_locator_skips_union_tags(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b:\n    - 1\n    - {c: 2}\n")
    data, locate = load_yaml_with_lines(path)
    assert data == {"a": {"b": [1, {"c": 2}]}}
    assert locate(("a", "b", 1, "c")) == 4
    assert locate.resolve(("a", "tag", "b", 0)) == (3, ("a", "b", 0))
    assert locate.resolve(("a", "missing")) == (1, ("a", "missing"))
    assert locate(("nowhere", 7)) == 1


def test_model_is_strict() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        Scale.model_validate({"id": "x", "title": "x", "source": "s", "extra": 1,
                              "raw_to_scaled": {"kind": "mean_points", "item_max": 6,
                                                "round_to": 0.5}})
