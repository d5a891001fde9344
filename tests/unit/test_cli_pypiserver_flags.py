"""A pypiserver user's flags get a sentence saying what to do in skypi, not argparse's
"unrecognized arguments" naming the wrong value; flags that ask for what skypi does anyway
are taken with a note."""

from __future__ import annotations

import pytest

from skypi.cli import PYPISERVER_FLAGS, build_parser


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["-P", "htpasswd.txt"], "skypi token import-htpasswd"),
        (["--passwords", "htpasswd.txt"], "skypi token import-htpasswd"),
        (["-o"], "never overwrites"),
        (["--overwrite"], "skypi delete PROJECT FILE"),
        (["--fallback-url", "https://pypi.org/simple/"], "docs/public-dependencies.md"),
        (["--hash-algo", "md5"], "sha256"),
        (["--log-file", "x.log"], "standard error"),
        (["--log-req-frmt", "%(PATH_INFO)s"], "--no-access-log"),
        (["--log-res-frmt", "%(status)s"], "Common Log Format"),
    ],
)
def test_a_pypiserver_flag_says_what_to_do_instead(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["serve", *argv, "./packages"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"skypi: {argv[0]} is pypiserver's: " in err
    assert says in err
    assert "unrecognized" not in err
    assert "usage:" not in err


@pytest.mark.parametrize(
    "argv", [["--disable-fallback"], ["-P", ".", "-a", "."], ["-v"], ["-vv"], ["--verbose"]]
)
def test_flags_asking_for_what_skypi_does_are_taken(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["serve", *argv, "./packages"])
    assert args.dir == "./packages"
    assert "is not needed" in capsys.readouterr().err


def test_every_flag_is_documented_for_pypiserver_users() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("### Coming from pypiserver", 1)[1].split("\n\n", 3)[2]
    for flags in PYPISERVER_FLAGS:
        assert any(f"`{flag}" in table for flag in flags), flags
