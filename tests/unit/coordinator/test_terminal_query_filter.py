"""`berth terminal` with piped input drops the terminal queries nothing would answer."""

from coordinator.client.terminal_cli import QueryFilter


def test_queries_are_dropped_and_other_escapes_kept() -> None:
    queries = QueryFilter()
    assert queries.feed(b"/ # \x1b[6necho hi\x1b[c\x1b[>c\x1b[5n") == b"/ # echo hi"
    assert queries.feed(b"\x1b[31mred\x1b[0m \x1b[2J") == b"\x1b[31mred\x1b[0m \x1b[2J"


def test_a_query_split_across_chunks_is_dropped_whole() -> None:
    queries = QueryFilter()
    assert queries.feed(b"a\x1b") == b"a"
    assert queries.feed(b"[") == b""
    assert queries.feed(b"6nb") == b"b"
    assert queries.feed(b"c\x1b[1") == b"c"
    assert queries.feed(b"m") == b"\x1b[1m"
