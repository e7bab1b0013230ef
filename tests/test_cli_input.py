"""The command line on bad input (issue 22): one line and a non-zero exit, nothing of the user's lost."""

import pytest

from tests.cli_helpers import invoke

# Python hands a command-line argument that is not UTF-8 over as a str with each bad byte as a
# lone surrogate (U+DC80 + the byte): printf 'caf\xe9 noir' arrives as this.
NOT_UTF8 = "caf\udce9 noir"


@pytest.mark.parametrize(
    "args",
    [
        ["dump", NOT_UTF8],
        ["dump", "un chien", "--target", NOT_UTF8],
        ["translate", NOT_UTF8],
    ],
)
@pytest.mark.parametrize("model", ["tiny_checkpoint", "subword_checkpoint"])
def test_a_sentence_that_is_not_utf8_is_one_line(args, model, request):
    result = invoke(*args, "--checkpoint", request.getfixturevalue(model))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "not valid UTF-8 (byte 0xE9 at position 3)" in result.stderr
