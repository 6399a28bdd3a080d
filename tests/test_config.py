"""Config files: where they are found, key and type checks, and the command line's precedence."""

import re

import pytest

from losslens.config import Config, Setting, check, merge, read_config
from losslens.errors import UsageError

SETTINGS = [
    Setting("fail_if", "fail_if", "str", multiple=True),
    Setting("json", "json_path", "str"),
    Setting("bins", "bins", "int"),
    Setting("near_zero", "near_zero", "float"),
    Setting("quiet", "quiet", "bool"),
]


def test_keys_map_to_parameters_and_values_are_typed():
    values = check({"fail_if": ["log_loss > 0.3"], "json": "out.json", "bins": 10, "near_zero": 1, "quiet": True},
                   SETTINGS, "x.toml")
    assert values == {"fail_if": ["log_loss > 0.3"], "json_path": "out.json", "bins": 10, "near_zero": 1.0, "quiet": True}
    assert isinstance(values["near_zero"], float)
    # One value for a repeatable option is a list of one.
    assert check({"fail_if": "ece > 0.1"}, SETTINGS, "x.toml") == {"fail_if": ["ece > 0.1"]}


def test_unknown_keys_are_errors_that_list_the_known_ones():
    with pytest.raises(UsageError, match=re.escape(
        "x.toml: unknown key 'colour'; known keys: bins, fail_if, json, near_zero, quiet"
    )):
        check({"colour": True}, SETTINGS, "x.toml")
    with pytest.raises(UsageError, match=re.escape("x.toml: unknown key 'near-zero' (write 'near_zero')")):
        check({"near-zero": 0.1}, SETTINGS, "x.toml")


@pytest.mark.parametrize("key, value, expected", [
    ("bins", "10", "bins must be of type whole number, got '10'"),
    ("bins", True, "bins must be of type whole number, got True"),
    ("bins", 1.5, "bins must be of type whole number, got 1.5"),
    ("quiet", 1, "quiet must be of type true or false, got 1"),
    ("fail_if", ["a > 1", 2], "fail_if must be a list of values of type string, got ['a > 1', 2]"),
])
def test_wrong_types_are_errors(key, value, expected):
    with pytest.raises(UsageError, match=re.escape(f"x.toml: {expected}")):
        check({key: value}, SETTINGS, "x.toml")


def test_pyproject_in_the_working_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.losslens]\nbins = 7\nfail_if = ["log_loss > 1"]\n')
    config = read_config(None, SETTINGS, tmp_path)
    assert config == Config("pyproject.toml [tool.losslens]", {"bins": 7, "fail_if": ["log_loss > 1"]})


def test_pyproject_without_a_losslens_table_is_ignored(tmp_path):
    assert read_config(None, SETTINGS, tmp_path) is None
    (tmp_path / "pyproject.toml").write_text('[tool.black]\nline-length = 100\n')
    assert read_config(None, SETTINGS, tmp_path) is None


def test_explicit_config_with_top_level_keys_or_a_tool_table(tmp_path):
    plain = tmp_path / "nightly.toml"
    plain.write_text('bins = 5\njson = "m.json"\n')
    assert read_config(str(plain), SETTINGS, tmp_path).values == {"bins": 5, "json_path": "m.json"}
    project = tmp_path / "other.toml"
    project.write_text('[tool.losslens]\nquiet = true\n')
    config = read_config(str(project), SETTINGS, tmp_path)
    assert config.values == {"quiet": True} and config.where.endswith("other.toml [tool.losslens]")


def test_explicit_config_wins_over_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslens]\nbins = 7\n')
    explicit = tmp_path / "c.toml"
    explicit.write_text('near_zero = 0.5\n')
    assert read_config(str(explicit), SETTINGS, tmp_path).values == {"near_zero": 0.5}


def test_bad_or_missing_files_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match=re.escape(f"--config {tmp_path / 'nope.toml'}: no such file")):
        read_config(str(tmp_path / "nope.toml"), SETTINGS, tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("bins = \n")
    with pytest.raises(UsageError, match=re.escape(f"--config {bad}: not valid TOML")):
        read_config(str(bad), SETTINGS, tmp_path)


def test_command_line_overrides_the_file():
    config = Config("x.toml", {"bins": 5, "fail_if": ["a > 1"], "quiet": True})
    given = {"bins": 15, "fail_if": ["b > 2"], "quiet": False, "worst": 20}
    merged = merge(given, config, from_command_line={"fail_if"})
    # fail_if given on the command line replaces the file's list; bins and quiet come from the file.
    assert merged == {"bins": 5, "fail_if": ["b > 2"], "quiet": True, "worst": 20}
    assert merge(given, None, set()) == given
