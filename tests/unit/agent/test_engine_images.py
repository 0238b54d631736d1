"""Pulls, image lookups and builds on the socket: the SDK's requests, errors and messages."""

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import docker
import pytest

from agent.runtime import RunSpec
from agent.runtime.docker import DockerRuntime
from agent.runtime.engine_ops import client_config_in_effect, parse_repository_tag
from shared.errors import RuntimeFailed
from tests.unit.agent.fake_engine import IMAGE_ID, FakeEngine, Stream, container_routes


def sdk_client(engine: FakeEngine) -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix://{engine.server_address}", timeout=5)


def test_repository_and_tag_split_as_the_sdk_splits() -> None:
    from docker.utils import parse_repository_tag as sdk_split

    for image in (
        "busybox",
        "busybox:1.36",
        "registry.example:5000/shop/web",
        "registry.example:5000/shop/web:v2",
        f"shop/web@{IMAGE_ID}",
        f"registry.example:5000/shop/web@{IMAGE_ID}",
    ):
        assert parse_repository_tag(image) == sdk_split(image), image


@pytest.mark.parametrize(
    ("image", "query", "lookup"),
    [
        ("busybox", {"tag": ["latest"], "fromImage": ["busybox"]}, "busybox:latest"),
        (
            "registry.example:5000/shop/web:v2",
            {"tag": ["v2"], "fromImage": ["registry.example:5000/shop/web"]},
            "registry.example:5000/shop/web:v2",
        ),
        (
            f"shop/web@{IMAGE_ID}",
            {"tag": [IMAGE_ID], "fromImage": ["shop/web"]},
            f"shop/web@{IMAGE_ID}",
        ),
    ],
)
async def test_pull_asks_what_the_sdk_asks_and_returns_the_id(
    engine: FakeEngine, image: str, query: dict[str, list[str]], lookup: str
) -> None:
    engine.routes[("POST", "/images/create")] = (
        200,
        Stream([{"status": "Pulling from shop/web", "id": "v2"}, {"status": "Digest: sha256:x"}]),
    )
    engine.routes[("GET", f"/images/{lookup}/json")] = (200, {"Id": IMAGE_ID})
    runtime = DockerRuntime(extra_labels={})
    assert await runtime.pull(image) == IMAGE_ID
    [pull] = engine.requests_to("POST", "/images/create")
    assert pull.query == query
    assert not pull.sdk


async def test_pull_error_in_the_stream_fails_with_the_engines_reason(engine: FakeEngine) -> None:
    # The engine answered 200 and then failed mid-pull: the status alone does not tell.
    engine.routes[("POST", "/images/create")] = (
        200,
        Stream(
            [
                {"status": "Pulling fs layer", "id": "abc"},
                {"errorDetail": {"message": "unexpected EOF"}, "error": "unexpected EOF"},
            ]
        ),
    )
    engine.routes[("GET", "/images/busybox:latest/json")] = (200, {"Id": IMAGE_ID})
    runtime = DockerRuntime(extra_labels={})
    with pytest.raises(RuntimeFailed, match=r"^cannot pull image busybox: unexpected EOF$"):
        await runtime.pull("busybox")
    assert not engine.requests_to("GET", "/images/busybox:latest/json")


async def test_pull_refused_and_garbled(engine: FakeEngine) -> None:
    engine.routes[("POST", "/images/create")] = (
        404,
        {"message": "pull access denied for nope, repository does not exist"},
    )
    runtime = DockerRuntime(extra_labels={})
    with pytest.raises(RuntimeFailed, match=r"cannot pull image nope: 404 Client Error.*denied"):
        await runtime.pull("nope")
    engine.routes[("POST", "/images/create")] = (200, b'{"status": "Pull')
    with pytest.raises(RuntimeFailed, match=r"cannot pull image nope: .*invalid JSON"):
        await runtime.pull("nope")


async def test_image_id_found_missing_and_failing(engine: FakeEngine) -> None:
    engine.routes[("GET", "/images/busybox:latest/json")] = (200, {"Id": IMAGE_ID})
    engine.routes[("GET", "/images/gone/json")] = (404, {"message": "No such image: gone"})
    engine.routes[("GET", "/images/broken/json")] = (500, {"message": "engine trouble"})
    runtime = DockerRuntime(extra_labels={})
    assert await runtime.image_id("busybox:latest") == IMAGE_ID
    assert await runtime.image_id("gone") is None
    with pytest.raises(RuntimeFailed, match=r"cannot inspect image broken: 500 .*engine trouble"):
        await runtime.image_id("broken")


def make_context(root: Path) -> Path:
    context = root / "src"
    (context / "app" / "static").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM busybox\nCOPY . /app\n")
    (context / "app" / "main.sh").write_text("echo hi\n")
    (context / "app" / "static" / "index.html").write_text("<p>hi</p>\n")
    (context / "app" / "link").symlink_to("main.sh")
    return context


def build_routes(engine: FakeEngine, answer: list[dict[str, Any]]) -> None:
    engine.routes[("POST", "/build")] = (200, Stream(answer))
    engine.routes[("GET", "/images/shop/web:b1/json")] = (200, {"Id": IMAGE_ID})


def members(body: bytes) -> list[tuple[str, int, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        found = []
        for member in archive.getmembers():
            data = archive.extractfile(member) if member.isfile() else None
            found.append((member.name, member.type[0], data.read() if data else b""))
        return found


async def test_build_sends_the_sdks_query_and_context(engine: FakeEngine, tmp_path: Path) -> None:
    context = make_context(tmp_path)
    build_routes(
        engine,
        [
            {"stream": "Step 1/2 : FROM busybox\n"},
            {"stream": " ---> 1a2b\nStep 2/2 : COPY . /app\n"},
            {"aux": {"ID": IMAGE_ID}},
            {"stream": "Successfully built 1a2b\n"},
        ],
    )
    lines: list[str] = []
    runtime = DockerRuntime(extra_labels={"berth.test": "unit"})
    image = await runtime.build(context, "Dockerfile", "prod", "shop/web:b1", lines.append)
    assert image == IMAGE_ID
    assert lines == [
        "Step 1/2 : FROM busybox",
        " ---> 1a2b",
        "Step 2/2 : COPY . /app",
        "Successfully built 1a2b",
    ]
    [ours] = engine.requests_to("POST", "/build")
    assert not ours.sdk

    engine.seen.clear()
    # The SDK's stream reader wants each object whole with its line end: one object, unchunked.
    engine.routes[("POST", "/build")] = (200, {"stream": "ok\n"})
    client = sdk_client(engine)
    for target in ("prod", None):
        list(
            client.api.build(
                path=str(context),
                dockerfile="Dockerfile",
                target=target,
                tag="shop/web:b1",
                rm=True,
                forcerm=True,
                decode=True,
                labels={"berth.test": "unit"} if target else {},
            )
        )
    client.close()
    theirs, theirs_plain = engine.requests_to("POST", "/build")
    assert ours.query == theirs.query
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/tar"
    assert members(ours.body) == members(theirs.body)

    # Without a target or extra labels, neither is sent.
    engine.seen.clear()
    await DockerRuntime(extra_labels={}).build(context, "Dockerfile", None, "shop/web:b1", print)
    [plain] = engine.requests_to("POST", "/build")
    assert plain.query == theirs_plain.query


async def test_build_error_in_the_stream_fails_with_the_builders_words(
    engine: FakeEngine, tmp_path: Path
) -> None:
    context = make_context(tmp_path)
    build_routes(
        engine,
        [
            {"stream": "Step 1/2 : RUN exit 3\n"},
            {
                "errorDetail": {"code": 3, "message": "returned a non-zero code: 3"},
                "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3\n",
            },
        ],
    )
    lines: list[str] = []
    runtime = DockerRuntime(extra_labels={})
    with pytest.raises(RuntimeFailed) as caught:
        await runtime.build(context, "Dockerfile", None, "shop/web:b1", lines.append)
    message = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert str(caught.value) == f"docker build failed: {message}"
    assert lines == ["Step 1/2 : RUN exit 3", message]


async def test_build_refused_or_without_an_image(engine: FakeEngine, tmp_path: Path) -> None:
    context = make_context(tmp_path)
    engine.routes[("POST", "/build")] = (500, {"message": "no space left on device"})
    runtime = DockerRuntime(extra_labels={})
    with pytest.raises(RuntimeFailed, match=r"docker build failed: 500 .*no space left"):
        await runtime.build(context, "Dockerfile", None, "shop/web:b1", print)
    engine.routes[("POST", "/build")] = (200, Stream([{"stream": "done\n"}]))
    with pytest.raises(RuntimeFailed, match="docker build produced no image shop/web:b1"):
        await runtime.build(context, "Dockerfile", None, "shop/web:b1", print)


async def test_build_leaves_out_what_dockerignore_excludes_as_the_sdk_does(
    engine: FakeEngine, tmp_path: Path
) -> None:
    context = make_context(tmp_path)
    (context / ".dockerignore").write_text("# assets\napp/static\n*.log\n!keep.log\nDockerfile\n")
    (context / "debug.log").write_text("x")
    (context / "keep.log").write_text("x")
    build_routes(engine, [{"stream": "ok\n"}])
    runtime = DockerRuntime(extra_labels={})
    assert await runtime.build(context, "Dockerfile", None, "shop/web:b1", print) == IMAGE_ID
    [ours] = engine.requests_to("POST", "/build")
    assert not ours.sdk

    engine.seen.clear()
    engine.routes[("POST", "/build")] = (200, {"stream": "ok\n"})
    client = sdk_client(engine)
    list(client.api.build(path=str(context), dockerfile="Dockerfile", tag="t", decode=True))
    client.close()
    [theirs] = engine.requests_to("POST", "/build")
    names = [name for name, _, _ in members(ours.body)]
    assert members(ours.body) == members(theirs.body)
    # The Dockerfile and .dockerignore are always sent; the rest as the patterns say.
    assert {"Dockerfile", ".dockerignore", "keep.log", "app/main.sh"} <= set(names)
    assert not {"debug.log", "app/static", "app/static/index.html"} & set(names)


async def test_client_credentials_leave_pulls_builds_and_runs_to_the_sdk(
    engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = make_context(tmp_path)
    build_routes(engine, [{"stream": "ok\n"}])
    engine.routes[("POST", "/build")] = (200, {"stream": "ok\n"})
    container_routes(engine)
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {"registry.example": {}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert client_config_in_effect()
    runtime = DockerRuntime(extra_labels={})
    try:
        await runtime.build(context, "Dockerfile", None, "shop/web:b1", print)
        await runtime.run(RunSpec(name="web-1", image="busybox"))
    finally:
        await runtime.close()
    sent = engine.requests_to("POST", "/build") + engine.requests_to("POST", "/containers/create")
    assert len(sent) == 2
    assert all(seen.sdk for seen in sent)


def test_client_configuration_that_matters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    assert not client_config_in_effect()
    (tmp_path / ".docker").mkdir()
    config = tmp_path / ".docker" / "config.json"
    config.write_text(json.dumps({"auths": {}, "detachKeys": "ctrl-q"}))
    assert not client_config_in_effect()
    for key, value in (
        ("auths", {"ghcr.io": {"auth": "dTpw"}}),
        ("credsStore", "pass"),
        ("credHelpers", {"gcr.io": "gcloud"}),
        ("proxies", {"default": {"httpProxy": "http://proxy:3128"}}),
    ):
        config.write_text(json.dumps({key: value}))
        assert client_config_in_effect(), key
    config.write_text("not json")
    assert client_config_in_effect()
