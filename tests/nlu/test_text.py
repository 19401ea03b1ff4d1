import pytest

from tuanjian.text import MAX_CHARS, has_words, normalize


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("團組織關係轉接怎麼辦", "团组织关系转接怎么办"),
        ("忘記密碼了", "忘记密码了"),
        ("２０１９００１", "2019001"),
        ("ＡＰＰ登不上？", "app登不上?"),
        ("怎么办！！", "怎么办!!"),
        ("  我 在 深 圳  上班 ", "我在深圳上班"),
        ("hello  智慧团建", "hello 智慧团建"),
        ("密码忘了😭😭", "密码忘了"),
        ("<b>系统终止</b>了", "系统终止了"),
        ("&lt;script&gt;转人工", "转人工"),
        ("\u200b团委\ufeff", "团委"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_is_idempotent():
    once = normalize("團關係轉接　２０１９，ＯＫ？😀")
    assert normalize(once) == once


def test_long_input_is_capped():
    assert len(normalize("转" * 5000)) == MAX_CHARS


@pytest.mark.parametrize("text", ["", "   ", "😀👍🏻", "？？？！！", "。。。", "<br/>", None])
def test_nothing_readable(text):
    assert not has_words(text or "")


@pytest.mark.parametrize("text", ["密", "ok", "2019001", "團"])
def test_something_readable(text):
    assert has_words(text)
