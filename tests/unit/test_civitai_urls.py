"""Every Civitai URL form researchers paste reduces to the right model and version ids."""

import pytest

from mirrorwatch.bank.urls import parse_civitai_url
from mirrorwatch.errors import InvalidUrl


@pytest.mark.parametrize(
    ("url", "model", "version"),
    [
        ("https://civitai.com/models/101001/jane-example-lora?modelVersionId=202001", 101001, 202001),
        ("https://civitai.com/models/101002", 101002, None),
        ("civitai.com/models/101003/zoe-placeholder", 101003, None),
        ("https://civitai.com/api/download/models/202004", None, 202004),
        ("https://civitai.com/model-versions/202005", None, 202005),
        ("https://civitai.com/models/101006?modelVersionId=202006", 101006, 202006),
        ("https://www.civitai.com/models/101008/lena-invented?modelVersionId=202008&type=Model", 101008, 202008),
        ("https://civitai.com/models/101009/only-an-url", 101009, None),
        ("HTTP://CIVITAI.COM/models/101010/", 101010, None),
        ("https://civitai.com/api/v1/models/101011", 101011, None),
        ("https://civitai.com/api/v1/model-versions/202012", None, 202012),
        ("https://civitai.green/models/101013?modelVersionId=202013", 101013, 202013),
        ("civitai:101014", 101014, None),
        ("civitai:101015@202015", 101015, 202015),
        ("urn:air:sd1:lora:civitai:101001@202001", 101001, 202001),
        ("  <https://civitai.com/models/101016>  ", 101016, None),
    ],
)
def test_url_forms(url, model, version):
    ref = parse_civitai_url(url)
    assert (ref.model_id, ref.version_id) == (model, version)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.org/some/page", r"not a Civitai URL \(host example.org\)"),
        ("https://civitai.com/images/12345", "does not name a model"),
        ("https://civitai.com/models/abc", "does not name a model"),
        ("", "empty URL"),
        ("https://civitai.com/models/0", "implausible"),
        ("https://civitai.com/models/99999999999999999999", "implausible"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(InvalidUrl, match=message):
        parse_civitai_url(url)


def test_canonical_url():
    assert parse_civitai_url("civitai.com/models/5/x?modelVersionId=7").url == (
        "https://civitai.com/models/5?modelVersionId=7"
    )
    assert parse_civitai_url("https://civitai.com/api/download/models/7").url == "https://civitai.com/model-versions/7"


@pytest.mark.parametrize("text", ["https://civitai.com/models/" + "9" * 5000, "civitai:" + "1" * 5000,
                                  "https://civitai.com/models/5?modelVersionId=\u00b2",
                                  "civitai.com/models/\u0663"])
def test_implausible_ids_are_invalid_urls(text):
    with pytest.raises(InvalidUrl, match="implausible"):
        parse_civitai_url(text)
