"""The docs tell the truth about what the code defines: the README's permission table is the
permission catalogue (``coordinator.permissions``), the protocol examples use the real defaults,
and links stay in the repository."""

import re
from pathlib import Path

from coordinator.permissions import GRANTS, PERMISSIONS
from coordinator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_permission_table_is_the_permission_list() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = (
        readme.index("<!-- permissions:start -->"),
        readme.index("<!-- permissions:end -->"),
    )
    rows = re.findall(r"^\| `([^`]+)` \| (.*) \|$", readme[start:end], flags=re.MULTILINE)
    assert tuple(name for name, _ in rows) == PERMISSIONS
    # The table is the catalogue, what each permission grants included.
    assert dict(rows) == GRANTS


def test_protocol_handshake_example_uses_the_default_heartbeat() -> None:
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    shown = {float(value) for value in re.findall(r'"heartbeatSeconds":\s*(\d+)', protocol)}
    assert shown == {Settings.model_fields["agent_heartbeat_seconds"].default}


def test_links_stay_inside_the_repository() -> None:
    outside: list[str] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        targets = LINK.findall(text) + re.findall(r"`(\.\./[^`]+)`", text)
        for target in targets:
            if re.match(r"(https?|mailto):", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                outside.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not outside, outside
