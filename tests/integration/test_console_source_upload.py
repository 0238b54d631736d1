"""Uploading a folder as a resource's source from the console, in a real headless Chromium against
a real coordinator, agent and Docker: the browser packs the folder (a path longer than a ustar
header holds included) less what its .dockerignore excludes (a file, a directory, a pattern
with a re-include; every .git directory), the coordinator stores exactly the kept files, the
next deployment builds it and runs it; an archived resource's upload shows the API's refusal.
Screenshots go to artifacts/console/<test>/."""

import tarfile
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from coordinator import archives
from tests.browser import artifacts_dir
from tests.harness import Coordinator, eventually
from tests.integration.stacks import workload
from tests.integration.test_console_pages import (
    _fits_phone,
    _signed_in,
    _unexpected,
    chromium_browser,
)

__all__ = ["chromium_browser"]

DEEP = "/".join(["a-rather-long-directory-name"] * 10) + "/note.txt"
DOCKERFILE = "FROM berth-test/busybox:latest\nCOPY . /app\n"
# The CLI's rules (coordinator/client/packing.py): a file, a directory, a pattern and a re-include.
DOCKERIGNORE = "# not sent\nsecret.env\nnode_modules\n*.log\n!keep.log\n"
IGNORED = {
    "secret.env": "TOKEN=never-uploaded\n",
    "node_modules/pkg/index.js": "module.exports = 1;\n",
    "node_modules/pkg/deep/more.js": "module.exports = 2;\n",
    "debug.log": "noise\n",
    ".git/HEAD": "ref: refs/heads/main\n",
}


def tar_names(path: Path) -> list[str]:
    """Every member's name (directories too) of a gzip tar."""
    with tarfile.open(path, mode="r:gz") as tar:
        return tar.getnames()


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_console_uploads_a_folder_that_the_next_deployment_builds(
    coordinator: Coordinator,
    admin_token: str,
    tmp_path: Path,
    chromium_browser: Browser,
    request: pytest.FixtureRequest,
) -> None:
    shots = artifacts_dir(request.node.name)
    # Past the ustar name and prefix fields (100 + 155 bytes): the packer must write a pax header.
    assert len(DEEP) > 256
    folder = tmp_path / "site"
    files = {
        "Dockerfile": DOCKERFILE,
        DEEP: "uploaded-from-the-console\n",
        ".dockerignore": DOCKERIGNORE,
        "keep.log": "kept by the re-include\n",
        # As in Docker, "*.log" matches at the folder's top only.
        "sub/trace.log": "kept: below the top\n",
    }
    for name, text in (files | IGNORED).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    stack = await workload(
        coordinator, admin_token, tmp_path / "agent", f"cat /app/{DEEP}; sleep 3600"
    )
    try:
        page, problems = await _signed_in(chromium_browser, coordinator, admin_token)
        await page.goto(f"{coordinator.url}/console/resources/{stack.resource_id}")
        await page.get_by_role("link", name="Source", exact=True).click()
        await expect(page.locator("#current-source")).to_contain_text("berth-test/busybox:latest")

        form = page.get_by_role("form", name="Upload a folder")
        await form.get_by_role("button", name="Upload folder").click()
        await expect(form.get_by_role("alert")).to_contain_text("Choose a folder first")
        await form.get_by_label("Folder").set_input_files(folder)
        await form.get_by_role("button", name="Upload folder").click()
        await expect(form.get_by_role("status")).to_contain_text(f"Uploaded {len(files)} files")
        await expect(form.get_by_role("status")).to_contain_text(
            f"{len(IGNORED)} left out by .dockerignore"
        )
        await expect(page.locator("#current-source")).to_have_attribute("data-kind", "local-folder")
        archive_id = await page.locator("#source-archive").text_content()
        shown = await stack.call("GET", f"/resources/{stack.resource_id}")
        assert shown["source"]["kind"] == "local-folder"
        assert shown["source"]["locator"] == "site"
        assert shown["source"]["metadata"]["archiveId"] == archive_id
        await page.screenshot(path=shots / "source-uploaded.png", full_page=True)

        # What the coordinator stored is the folder less what .dockerignore excludes, file for
        # file, at the archive's root: no excluded file and nothing under an excluded directory.
        stored = archives.archive_path(coordinator.settings().data_dir, str(archive_id))
        with tarfile.open(stored, mode="r:gz") as tar:
            held = {
                m.name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }
        assert held == files
        assert not any(name.startswith(("node_modules", ".git")) for name in tar_names(stored))

        # The next deployment builds the uploaded folder and runs it.
        await stack.deploy(timeout=180)

        async def printed() -> bool:
            logs = await stack.call("GET", f"/resources/{stack.resource_id}/runtime-logs")
            return any(line["message"] == "uploaded-from-the-console" for line in logs["logs"])

        await eventually(printed, timeout=60, what="the built app's output")

        # Back to a prebuilt image.
        image = page.get_by_role("form", name="Use an image")
        await image.get_by_label("Image").fill("berth-test/busybox:latest")
        await image.get_by_role("button", name="Use image").click()
        await expect(page.locator("#current-source")).to_have_attribute("data-kind", "docker-image")
        await expect(page.locator("#current-source")).to_contain_text("berth-test/busybox:latest")
        shown = await stack.call("GET", f"/resources/{stack.resource_id}")
        assert (shown["source"]["imageName"], shown["source"]["imageTag"]) == (
            "berth-test/busybox",
            "latest",
        )

        # An archived resource takes no new source: the API's refusal is shown, nothing changes.
        await stack.call("POST", f"/resources/{stack.resource_id}/archive", {})
        await form.get_by_role("button", name="Upload folder").click()
        await expect(form.get_by_role("alert")).to_contain_text("archived")
        after = await stack.call("GET", f"/resources/{stack.resource_id}")
        assert after["source"] == shown["source"]
        await _fits_phone(page, shots / "phone-source.png")
        assert _unexpected(problems) == []
    finally:
        await stack.agent.stop()
