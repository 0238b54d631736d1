"""Which names an imported certificate covers (the other rules run end to end)."""

from coordinator.certificates.pem_checks import covers


def test_exact_names_and_one_label_wildcards_cover() -> None:
    assert covers(["app.example.com"], "app.example.com")
    assert covers(["APP.example.com."], "app.example.com")
    assert covers(["*.example.com"], "app.example.com")


def test_a_wildcard_covers_neither_the_apex_nor_two_labels() -> None:
    assert not covers(["*.example.com"], "example.com")
    assert not covers(["*.example.com"], "a.b.example.com")
    assert not covers(["other.example.com"], "app.example.com")
    assert not covers([], "app.example.com")
